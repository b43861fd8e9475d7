"""Tests of the headless command line on real folders and files."""

from __future__ import annotations

import csv
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from fault_files import tmpfs
from PIL import Image

from engine.cli import (
    EXIT_BAD_MODEL,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    SCORE_COLUMNS,
    main,
)
from engine.cli_parser import build_parser
from engine.invocation import COMMANDS
from engine.modelcard import card_path, evaluation_path, write_card
from engine.modelfile import ReferenceModel, save_model
from engine.resources import DEFAULT_MODEL_PATH

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def small_folder(tmp_path: Path, data_root: Path) -> Path:
    folder = tmp_path / "folder"
    (folder / "sub").mkdir(parents=True)
    with np.load(data_root / "medmnist" / "retinamnist.npz") as arrays:
        Image.fromarray(arrays["test_images"][0]).save(folder / "retina.png")
    source = next((data_root / "blood" / "pbc" / "eosinophil").glob("*.jpg"))
    shutil.copy(source, folder / "sub" / "cell.jpg")
    (folder / "zero.png").write_bytes(b"")
    return folder


def read_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as stream:
        return list(csv.DictReader(stream))


def test_score_writes_one_row_per_file(
    tmp_path: Path, small_folder: Path, default_model: ReferenceModel,
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = tmp_path / "scores.csv"

    code = main(["score", str(small_folder), "--csv", str(out)])

    rows = {row["path"]: row for row in read_rows(out)}
    assert code == EXIT_OK
    assert capsys.readouterr().out == (
        "3 files: 1 flagged, 1 kept, 1 without a score (the CSV's status column says "
        f"why). Scores written to {out}.\n")
    assert tuple(read_rows(out)[0]) == SCORE_COLUMNS
    assert set(rows) == {"retina.png", "sub/cell.jpg", "zero.png"}
    assert rows["sub/cell.jpg"]["flagged"] == "true"
    assert rows["retina.png"]["flagged"] == "false"
    assert rows["zero.png"]["status"] == "empty file"
    assert rows["zero.png"]["score"] == ""
    assert float(rows["retina.png"]["threshold"]) == pytest.approx(default_model.threshold)
    assert rows["retina.png"]["model"].endswith(default_model.fingerprint)


def test_score_threshold_option(tmp_path: Path, small_folder: Path) -> None:
    out = tmp_path / "scores.csv"

    main(["score", str(small_folder), "--csv", str(out), "--threshold", "10"])

    assert [row["flagged"] for row in read_rows(out)] == ["false", "false", ""]


def test_score_calibrated_threshold_ignores_folder_choice(
    tmp_path: Path, small_folder: Path, default_model: ReferenceModel
) -> None:
    chosen, calibrated = tmp_path / "chosen.csv", tmp_path / "calibrated.csv"
    main(["export", str(small_folder), "--to", str(tmp_path / "export"), "--threshold", "10"])

    main(["score", str(small_folder), "--csv", str(chosen)])
    main(["score", str(small_folder), "--csv", str(calibrated), "--threshold", "calibrated"])

    assert {float(row["threshold"]) for row in read_rows(chosen)} == {10.0}
    assert [float(row["threshold"]) for row in read_rows(calibrated)] == pytest.approx(
        [default_model.threshold] * 3)
    assert read_rows(calibrated)[1]["flagged"] == "true"


@pytest.mark.parametrize("names", [
    [],  # an empty folder
    ["notes.txt", "sub/readme.md"],  # files without an image suffix
    [".hidden.png"],  # a hidden image only
], ids=["empty", "other-files", "hidden"])
def test_score_without_images_warns(
    tmp_path: Path, names: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "folder"
    folder.mkdir()
    for name in names:
        (folder / name).parent.mkdir(exist_ok=True)
        (folder / name).write_text("not an image\n")
    out = tmp_path / "scores.csv"

    code = main(["score", str(folder), "--csv", str(out)])
    errors = capsys.readouterr().err

    assert code == EXIT_OK
    assert out.read_text().splitlines() == [",".join(SCORE_COLUMNS)]
    assert errors.startswith(f"No image file found in {folder} or its subfolders. Images are "
                             "the files ending in .avif, .bmp,")
    assert ".jpg, " in errors
    assert errors.endswith("; hidden files and folders are left out. Check the path.\n")


@pytest.mark.parametrize("command", ["move-rejects", "export"])
def test_review_command_without_images_warns(
    tmp_path: Path, command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "notes.txt").write_text("not an image\n")

    code = main([command, str(folder), "--to", str(tmp_path / "destination")])
    errors = capsys.readouterr().err

    assert code == EXIT_OK
    assert f"No image file found in {folder} or its subfolders." in errors
    assert (folder / "notes.txt").read_text() == "not an image\n"


def run_main_script(*arguments: str) -> subprocess.CompletedProcess[str]:
    """Run `python main.py` with `arguments` in the checkout and capture its output."""
    return subprocess.run([sys.executable, "main.py", *arguments], cwd=REPO,
                          capture_output=True, text=True, check=False, timeout=120)


@pytest.mark.parametrize("command", COMMANDS)
def test_help_breaks_lines_at_spaces_only(
    command: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    # argparse takes its width from COLUMNS. At 93 it split "held-out" in two.
    broken = []
    for columns in range(50, 121):
        monkeypatch.setenv("COLUMNS", str(columns))
        with pytest.raises(SystemExit):
            main([command, "--help"])
        lines = capsys.readouterr().out.splitlines()
        broken += [(columns, line) for line in lines if line.endswith("-")]

    assert not broken


@pytest.mark.parametrize(("command", "placeholders"), [
    ("train", ["--medmnist-root FOLDER", "--out FILE", "--epochs N", "--target-frr SHARE"]),
    ("score", ["--csv FILE", "--model FILE", "--threshold VALUE", "FOLDER"]),
    ("evaluate", ["--data-root FOLDER", "--json FILE"]),
    ("export", ["--to DEST", "FOLDER"]),
])
def test_help_names_what_each_option_takes(
    command: str, placeholders: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        main([command, "--help"])
    text = capsys.readouterr().out

    assert all(placeholder in text for placeholder in placeholders), text


def test_usage_names_main_script() -> None:
    result = run_main_script("score")

    assert result.returncode == EXIT_USAGE
    assert result.stderr.startswith("usage: python main.py score [-h]")
    assert "retina-curator-cli" not in result.stderr


def test_usage_names_entry_point(tmp_path: Path) -> None:
    entry_point = Path(sys.executable).parent / "retina-curator-cli"
    assert entry_point.is_file(), f"{entry_point} is missing: run pip install -e . first"

    result = subprocess.run(
        [str(entry_point), "score"], cwd=tmp_path, capture_output=True, text=True,
        check=False, timeout=120, env={**os.environ, "PYTHONPATH": str(REPO)},
    )

    assert result.returncode == EXIT_USAGE
    assert result.stderr.startswith("usage: retina-curator-cli score [-h]")
    assert "main.py" not in result.stderr


def test_mistyped_command_named(tmp_path: Path) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()

    result = run_main_script("scor", str(folder))

    assert result.returncode == EXIT_USAGE
    assert "error: argument command: invalid choice: 'scor' (choose from 'train', " in (
        result.stderr)
    assert result.stderr.endswith(" Did you mean 'score'?\n")
    assert "unrecognized arguments" not in result.stderr
    assert not (folder / ".retina-curator").exists()


def test_score_missing_folder_fails(tmp_path: Path) -> None:
    code = main(["score", str(tmp_path / "absent"), "--csv", str(tmp_path / "out.csv")])

    assert code == EXIT_FAILED


def test_unsafe_model_exits_nonzero(tmp_path: Path, small_folder: Path, data_root: Path) -> None:
    model = Path(shutil.copy(data_root.parent / "cases" / "models" / "ckpt_malicious.pt",
                             tmp_path / "model.pt"))

    result = subprocess.run(
        [sys.executable, "main.py", "score", str(small_folder), "--csv",
         str(tmp_path / "out.csv"), "--model", str(model)],
        cwd=REPO, capture_output=True, text=True, check=False, timeout=120,
    )

    assert result.returncode == EXIT_BAD_MODEL
    assert "not a safetensors model file" in result.stderr
    assert "CASEFILES_PICKLE_PAYLOAD_EXECUTED" not in result.stdout + result.stderr


def test_folder_as_model_exits_two(tmp_path: Path, small_folder: Path) -> None:
    models = tmp_path / "models"
    models.mkdir()

    result = subprocess.run(
        [sys.executable, "main.py", "score", str(small_folder), "--csv",
         str(tmp_path / "out.csv"), "--model", str(models)],
        cwd=REPO, capture_output=True, text=True, check=False, timeout=120,
    )

    assert result.returncode == EXIT_BAD_MODEL
    assert result.stderr.strip() == (f"Loading model {models} failed: it is a folder, not a "
                                      "model file. Pass the path of a .safetensors model file.")
    assert not (tmp_path / "out.csv").exists()


def test_score_logs_decoder_warning_with_file(tmp_path: Path) -> None:
    folder = tmp_path / "folder"
    folder.mkdir()
    # The first EXIF directory announces five entries and contains one.
    exif = b"Exif\x00\x00II*\x00\x08\x00\x00\x00\x05\x00\x12\x01\x03\x00"
    Image.new("RGB", (40, 30), (200, 80, 30)).save(folder / "photo.jpg", exif=exif)
    csv_path = tmp_path / "scores.csv"

    result = subprocess.run(
        [sys.executable, "main.py", "score", str(folder), "--csv", str(csv_path)],
        cwd=REPO, capture_output=True, text=True, check=False, timeout=120,
    )
    with csv_path.open(newline="", encoding="utf-8") as stream:
        [row] = list(csv.DictReader(stream))

    assert result.returncode == EXIT_OK
    assert f"WARNING engine.images: {folder / 'photo.jpg'}: Corrupt EXIF data" in result.stderr
    assert "warnings.warn" not in result.stderr
    assert row["status"] == "ok"


@pytest.mark.parametrize("command", [
    ["score", "{folder}", "--csv", "{out}/scores.csv"],
    ["train", "--folder", "{folder}", "--out", "{out}/model.safetensors"],
    ["evaluate", "--data-root", "{folder}", "--json", "{out}/table.json"],
], ids=["score", "train", "evaluate"])
def test_read_only_output_fails_first(
    tmp_path: Path, small_folder: Path, command: list[str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    with tmpfs(tmp_path / "read-only", "1m", read_only=True) as out:
        code = main([part.format(folder=small_folder, out=out) for part in command])
    errors = capsys.readouterr().err

    assert code == EXIT_FAILED
    assert f"{out} cannot be written to (read-only, or no permission)." in errors
    assert "Traceback" not in errors
    # Checked before any work: the folder was not even scored.
    assert not (small_folder / ".retina-curator").exists()


def test_unreadable_file_reported_once(
    tmp_path: Path, small_folder: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (small_folder / "broken.png").symlink_to(tmp_path / "absent.png")

    with caplog.at_level(logging.DEBUG):
        code = main(["score", str(small_folder), "--csv", str(tmp_path / "scores.csv")])
    warnings = [record.getMessage() for record in caplog.records
                if record.levelno >= logging.WARNING and "broken.png" in record.getMessage()]

    assert code == EXIT_OK
    # The skipped file's status, and no second line from hashing it for the CSV.
    assert warnings == [f"skipped {small_folder / 'broken.png'}: broken symbolic link"]


def test_score_never_replaces_a_pipe(tmp_path: Path, small_folder: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    pipe = tmp_path / "scores.csv"
    os.mkfifo(pipe)

    code = main(["score", str(small_folder), "--csv", str(pipe), "--overwrite"])

    assert code == EXIT_FAILED
    assert f"{pipe} is not a regular file" in capsys.readouterr().err
    assert pipe.is_fifo()


def test_score_keeps_broken_link_without_overwrite(
    tmp_path: Path, small_folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    link = tmp_path / "scores.csv"
    link.symlink_to(tmp_path / "nowhere.csv")

    code = main(["score", str(small_folder), "--csv", str(link)])

    assert code == EXIT_FAILED
    assert f"{link} exists. Pass --overwrite" in capsys.readouterr().err
    assert link.is_symlink()


def test_train_writes_loadable_model(tmp_path: Path, data_root: Path) -> None:
    out = tmp_path / "model.safetensors"

    code = main(["train", "--medmnist-root", str(data_root / "medmnist"),
                 "--out", str(out), "--epochs", "1"])
    card = out.with_suffix(".md")

    assert code == EXIT_OK
    assert out.is_file()
    assert card.read_text().startswith("# Model card: model.safetensors")


def test_train_failure_after_progress_bar(
    tmp_path: Path, retina_arrays: np.ndarray, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "copies"
    folder.mkdir()
    for index in range(66):
        Image.fromarray(retina_arrays[0]).save(folder / f"copy{index:02d}.png")

    code = main(["train", "--folder", str(folder), "--out", str(tmp_path / "m.safetensors"),
                 "--epochs", "2"])
    lines = capsys.readouterr().err.replace("\r", "\n").splitlines()

    assert code == EXIT_FAILED
    assert lines[-1].startswith("Training failed: the 20 held-out images are all alike")


def test_ctrl_c_stops_score_quietly(tmp_path: Path) -> None:
    # Photos of 16 Mpx take long enough to decode that the scan is still running.
    folder = tmp_path / "photos"
    folder.mkdir()
    Image.new("RGB", (4000, 4000), (150, 60, 30)).save(folder / "photo00.png")
    for index in range(1, 60):
        os.link(folder / "photo00.png", folder / f"photo{index:02d}.png")
    command = [sys.executable, "main.py", "score", str(folder), "--csv",
               str(tmp_path / "scores.csv")]
    process = subprocess.Popen(command, cwd=REPO, stderr=subprocess.PIPE, text=True)
    review = folder / ".retina-curator" / "review.sqlite"
    deadline = time.monotonic() + 60
    while not review.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(1.0)

    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)

    assert process.returncode == EXIT_INTERRUPTED
    assert stderr.rstrip().endswith("Score interrupted.")
    assert "Traceback" not in stderr


def test_train_missing_root_fails(tmp_path: Path) -> None:
    code = main(["train", "--medmnist-root", str(tmp_path), "--out",
                 str(tmp_path / "m.safetensors")])

    assert code == EXIT_FAILED


def test_evaluate_json(tmp_path: Path, data_root: Path, tiny_model: ReferenceModel) -> None:
    model_path = tmp_path / "tiny.safetensors"
    save_model(tiny_model, model_path)
    out = tmp_path / "evaluation.json"

    code = main(["evaluate", "--data-root", str(data_root), "--model", str(model_path),
                 "--json", str(out)])

    sources = {row["source"]: row for row in json.loads(out.read_text())["sources"]}
    assert code == EXIT_OK
    assert sources["RetinaMNIST test"]["n"] == 400
    assert sources["PBC blood cells 28 px"]["n"] == 800
    assert set(sources["BCCD blood smears"]) >= {"n", "flagged_fraction", "auroc"}
    assert sources["PBC blood cells 28 px"]["auroc"] > 0.9


def test_evaluate_failure_after_progress_bar(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()

    code = main(["evaluate", "--data-root", str(empty)])
    errors = capsys.readouterr().err
    expected = empty / "medmnist" / "retinamnist.npz"

    assert code == EXIT_FAILED
    # The progress bar is closed first, so the message has the last line to itself.
    assert errors.endswith(f"\nEvaluation failed: RetinaMNIST not found: expected {expected}.\n")
    assert errors.count("Evaluation failed") == 1


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("notes.txt", "is not a folder"),  # a file passed as the data root
        ("missing", "does not exist"),  # a typo in the path
    ],
)
def test_evaluate_rejects_bad_data_root(
    tmp_path: Path, name: str, problem: str, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "notes.txt").write_text("not a data folder\n")
    root = tmp_path / name

    code = main(["evaluate", "--data-root", str(root)])
    output = capsys.readouterr()

    assert code == EXIT_FAILED
    # Rejected before the progress bar appears.
    assert output.err == (f"Evaluation failed: the data root {root} {problem}. Pass the folder "
                          "that contains medmnist/, blood/, fundus/ and other/.\n")
    assert output.out == ""


def retina_only_data(
    tmp_path: Path, data_root: Path, model: ReferenceModel
) -> tuple[Path, Path]:
    """Save `model` and make a data folder with RetinaMNIST only; return both paths."""
    model_path = tmp_path / "tiny.safetensors"
    save_model(model, model_path)
    partial = tmp_path / "data" / "medmnist"
    partial.mkdir(parents=True)
    shutil.copy(data_root / "medmnist" / "retinamnist.npz", partial)
    return model_path, partial.parent


def test_evaluate_names_missing_sources(
    tmp_path: Path, data_root: Path, tiny_model: ReferenceModel,
    capsys: pytest.CaptureFixture[str],
) -> None:
    model_path, data = retina_only_data(tmp_path, data_root, tiny_model)

    code = main(["evaluate", "--data-root", str(data), "--model", str(model_path)])

    notice = capsys.readouterr().err.rpartition("Left out")[2]
    assert code == EXIT_OK
    assert notice.startswith(" 11 sources not found")
    assert "DRIVE fundus" in notice
    assert "Random noise" not in notice


def test_evaluate_card_needs_model(
    tmp_path: Path, data_root: Path, tiny_model: ReferenceModel,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    # A copy replaces the bundled model, so that a failing test leaves the real card alone.
    bundled = tmp_path / "bundled" / DEFAULT_MODEL_PATH.name
    bundled.parent.mkdir()
    shutil.copy(DEFAULT_MODEL_PATH, bundled)
    shutil.copy(card_path(DEFAULT_MODEL_PATH), card_path(bundled))
    card_before = card_path(bundled).read_bytes()
    monkeypatch.setattr("engine.cli.DEFAULT_MODEL_PATH", bundled)
    _, data = retina_only_data(tmp_path, data_root, tiny_model)

    code = main(["evaluate", "--data-root", str(data), "--card"])
    output = capsys.readouterr()

    assert code == EXIT_USAGE
    assert output.err == ("Evaluation failed: --card needs --model FILE, because it writes the "
                          "results beside the model file you name and never into the bundled "
                          "model's card.\n")
    # Rejected before any work: no table of results.
    assert output.out == ""
    assert card_path(bundled).read_bytes() == card_before
    assert not evaluation_path(bundled).exists()


def test_evaluate_card_beside_named_model(
    tmp_path: Path, data_root: Path, tiny_model: ReferenceModel
) -> None:
    model_path, data = retina_only_data(tmp_path, data_root, tiny_model)

    code = main(["evaluate", "--data-root", str(data), "--model", str(model_path), "--card"])

    assert code == EXIT_OK
    assert "## Evaluation" in card_path(model_path).read_text(encoding="utf-8")
    results = json.loads(evaluation_path(model_path).read_text(encoding="utf-8"))
    assert results["fingerprint"] == tiny_model.fingerprint
    assert results["sources"][0]["source"] == "RetinaMNIST test"


def test_card_shows_entry_point_command(tmp_path: Path, tiny_model: ReferenceModel) -> None:
    path = tmp_path / "model.safetensors"
    command = "retina-curator-cli train --folder good --out model.safetensors"

    write_card(tiny_model, path, command)

    assert f"```sh\n{command}\n```" in card_path(path).read_text(encoding="utf-8")


def test_evaluate_keeps_existing_json(
    tmp_path: Path, data_root: Path, tiny_model: ReferenceModel,
    capsys: pytest.CaptureFixture[str],
) -> None:
    model_path, data = retina_only_data(tmp_path, data_root, tiny_model)
    out = tmp_path / "evaluation.json"
    out.write_text("earlier results\n")
    command = ["evaluate", "--data-root", str(data), "--model", str(model_path),
               "--json", str(out)]

    rejected = main(command)
    rejected_output = capsys.readouterr()
    text_after_rejection = out.read_text()
    replaced = main([*command, "--overwrite"])

    assert rejected == EXIT_FAILED
    assert rejected_output.err == (f"Evaluation failed: {out} exists. Pass --overwrite to "
                                   "replace it, or another path.\n")
    # Rejected before any work: no table of results.
    assert rejected_output.out == ""
    assert text_after_rejection == "earlier results\n"
    assert replaced == EXIT_OK
    assert json.loads(out.read_text())["sources"][0]["source"] == "RetinaMNIST test"


def test_score_refuses_csv_inside_folder(small_folder: Path) -> None:
    image = small_folder / "retina.png"
    before = image.read_bytes()

    code = main(["score", str(small_folder), "--csv", str(image)])

    assert code == EXIT_FAILED
    assert image.read_bytes() == before


def test_score_keeps_existing_csv(tmp_path: Path, small_folder: Path) -> None:
    out = tmp_path / "scores.csv"
    out.write_text("earlier results\n")

    refused = main(["score", str(small_folder), "--csv", str(out)])
    assert out.read_text() == "earlier results\n"
    replaced = main(["score", str(small_folder), "--csv", str(out), "--overwrite"])

    assert refused == EXIT_FAILED
    assert replaced == EXIT_OK
    assert out.read_text().startswith("path,")


def test_score_skips_non_utf8_name(
    tmp_path: Path, small_folder: Path, caplog: pytest.LogCaptureFixture
) -> None:
    odd = os.fsencode(small_folder) + b"/bad\xff.png"
    with open(odd, "wb") as stream:
        stream.write((small_folder / "retina.png").read_bytes())
    out = tmp_path / "scores.csv"

    code = main(["score", str(small_folder), "--csv", str(out)])

    assert code == EXIT_OK
    assert len(read_rows(out)) == 3
    assert "not valid UTF-8" in caplog.text
    assert Path(os.fsdecode(odd)).read_bytes() == (small_folder / "retina.png").read_bytes()


def test_non_utf8_name_warned_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    folder = tmp_path / "folder"
    folder.mkdir()
    Image.new("RGB", (32, 32), (150, 60, 30)).save(folder / "retina.png")
    # The scored file makes the scan list the folder a second time at its end.
    odd = os.fsencode(folder) + b"/bad\xff.png"
    with open(odd, "wb") as stream:
        stream.write((folder / "retina.png").read_bytes())

    with caplog.at_level(logging.DEBUG):
        code = main(["score", str(folder), "--csv", str(tmp_path / "scores.csv")])
    warnings = [record.getMessage() for record in caplog.records
                if record.levelno >= logging.WARNING and "not valid UTF-8" in record.getMessage()]

    assert code == EXIT_OK
    assert warnings == [f"skipped {os.fsdecode(odd)}: the file name is not valid UTF-8, so "
                        "rename the file to score it"]


def test_non_utf8_folder_skipped(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    folder = tmp_path / "folder"
    folder.mkdir()
    Image.new("RGB", (32, 32), (150, 60, 30)).save(folder / "retina.png")
    odd = os.fsencode(folder) + b"/d\xe9j\xe0"
    os.mkdir(odd)
    with open(odd + b"/inside.png", "wb") as stream:
        stream.write((folder / "retina.png").read_bytes())
    scores = tmp_path / "scores.csv"

    with caplog.at_level(logging.WARNING):
        code = main(["score", str(folder), "--csv", str(scores)])
    warnings = [record.getMessage() for record in caplog.records
                if "not valid UTF-8" in record.getMessage()]

    assert code == EXIT_OK
    assert [row["path"] for row in read_rows(scores)] == ["retina.png"]
    assert warnings == [f"skipped folder {os.fsdecode(odd)}: the folder name is not valid "
                        "UTF-8, so rename the folder to score its files"]


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        # rate outside (0, 1)
        (["--target-frr", "0"], "invalid rate 0.0: pass a value between 0 and 1"),
        # a third of the rate, each signal's share, rounds to 0
        (["--target-frr", "5e-324"], "invalid rate 5e-324: its share for each of the 3 signals "
                                     "rounds to 0. Pass a larger rate"),
        # nothing to train
        (["--epochs", "0"], "invalid value 0: pass 1 or more"),
        # impossible bottleneck
        (["--latent", "-3"], "invalid value -3: pass 1 or more"),
        # wider than a model file may be, so the model would not load
        (["--latent", "4097"], "invalid value 4097: pass 4096 or less"),
        # numpy accepts no negative seed
        (["--seed", "-5"], "invalid value -5: pass 0 or more"),
        # above the 64 bits that torch accepts
        (["--seed", str(2**64)], f"invalid value {2**64}: pass {2**64 - 1} or less"),
        # not a whole number
        (["--seed", "1.5"], "invalid number '1.5': pass a whole number"),
    ],
)
def test_train_rejects_bad_options_at_once(
    tmp_path: Path, arguments: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as raised:
        main(["train", "--medmnist-root", str(tmp_path), "--out",
              str(tmp_path / "m.safetensors"), *arguments])

    assert raised.value.code == 2
    assert capsys.readouterr().err.endswith(f"argument {arguments[0]}: {message}\n")


def test_train_takes_option_limits(tmp_path: Path) -> None:
    args = build_parser().parse_args(
        ["train", "--folder", str(tmp_path), "--out", str(tmp_path / "m.safetensors"),
         "--seed", str(2**64 - 1), "--latent", "4096", "--target-frr", "1e-323"])

    assert args.seed == 2**64 - 1
    assert args.latent == 4096
    assert args.target_frr == 1e-323


def test_train_never_overwrites(tmp_path: Path, data_root: Path) -> None:
    notes = tmp_path / "notes.md"
    notes.write_text("my notes")
    root = str(data_root / "medmnist")

    wrong_suffix = main(["train", "--medmnist-root", root, "--out", str(notes)])
    card_taken = main(["train", "--medmnist-root", root, "--out",
                       str(tmp_path / "notes.safetensors")])

    assert wrong_suffix == EXIT_FAILED
    assert card_taken == EXIT_FAILED
    assert notes.read_text() == "my notes"


@pytest.mark.parametrize("value", ["nan", "inf", "-1"])  # flags nothing, nothing, everything
def test_threshold_must_be_finite(tmp_path: Path, small_folder: Path, value: str) -> None:
    with pytest.raises(SystemExit) as raised:
        main(["score", str(small_folder), "--csv", str(tmp_path / "o.csv"), "--threshold", value])

    assert raised.value.code == 2


@pytest.mark.parametrize(("command", "words"), [
    ("train", "Writes the model file and a model card"),
    ("score", "a second run scores only new or changed files"),
    ("evaluate", "the AUROC against the RetinaMNIST test images"),
    ("move-rejects", "Nothing is deleted or overwritten"),
    ("undo", "back from the quarantine folder to their original paths"),
    ("export", "manifest.csv and manifest.json list every reviewed file"),
])
def test_command_help_says_what_it_does(
    command: str, words: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    text = " ".join(capsys.readouterr().out.split())

    assert exit_info.value.code == 0
    assert words in text
