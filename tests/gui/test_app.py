"""Tests of the window's command line, each run in a separate Python process."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from PIL import Image

from engine.resources import DEMO_DIR
from gui.app import EXIT_USAGE, build_parser, main
from gui.main_window import DEFAULT_SIZE

REPOSITORY = Path(__file__).resolve().parents[2]
PROCESS_TIMEOUT_S = 180

CLOSE_DURING_SCORING = textwrap.dedent(
    """
    import sys
    from PySide6.QtWidgets import QApplication
    from engine.modelfile import load_model
    from engine.resources import DEFAULT_MODEL_PATH
    from gui.main_window import MainWindow

    app = QApplication([])
    window = MainWindow()
    window.set_model(load_model(DEFAULT_MODEL_PATH))
    window.show()
    window.gallery_model.rowsInserted.connect(window.close)
    window.open_folder(sys.argv[1])
    code = app.exec()
    print("rows", window.gallery_model.rowCount(), "jobs", window.running_job_count())
    sys.exit(code)
    """
)


def run_python(*arguments: str, data_home: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run Python with `arguments` on the offscreen platform and capture its output.

    `data_home` replaces the user's data folder, where the demo's working copy goes.
    """
    environment = dict(os.environ, QT_QPA_PLATFORM="offscreen", PYTHONPATH=str(REPOSITORY))
    if data_home is not None:
        environment["XDG_DATA_HOME"] = str(data_home)
    return subprocess.run(
        [sys.executable, *arguments], cwd=REPOSITORY, env=environment,
        capture_output=True, text=True, timeout=PROCESS_TIMEOUT_S, check=False,
    )


def run_app(*arguments: str, data_home: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run gui.app.main with `arguments` in a new process."""
    code = f"import sys; from gui.app import main; sys.exit(main({list(arguments)!r}))"
    return run_python("-c", code, data_home=data_home)


def test_screenshot_writes_window_png(mixed_folder: Path, tmp_path: Path) -> None:
    output = tmp_path / "window.png"
    result = run_app(str(mixed_folder), "--screenshot", str(output))

    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    with Image.open(output) as image:
        assert image.format == "PNG"
        assert image.size == (DEFAULT_SIZE.width(), DEFAULT_SIZE.height())


def test_screenshot_of_demo_folder(tmp_path: Path) -> None:
    assert DEMO_DIR.is_dir(), f"the demo folder {DEMO_DIR} is missing"
    output = tmp_path / "demo.png"
    data_home = tmp_path / "data"

    result = run_app("--demo", "--screenshot", str(output), "--log-level", "INFO",
                     data_home=data_home)

    assert result.returncode == 0, result.stderr
    assert output.stat().st_size > 0
    assert "scored" in result.stderr
    copy = data_home / "Retina Curator" / "Retina Curator" / "demo"
    assert sorted(p.name for p in copy.rglob("*.png")) == sorted(
        p.name for p in DEMO_DIR.rglob("*.png")
    )


def test_invalid_model_exits_with_message(mixed_folder: Path, tmp_path: Path) -> None:
    model = tmp_path / "model.safetensors"
    model.write_bytes(b"not a model")
    output = tmp_path / "window.png"
    result = run_app(str(mixed_folder), "--model", str(model), "--screenshot", str(output))

    assert result.returncode == EXIT_USAGE
    assert result.stderr.count(f"Loading model {model} failed") == 1, result.stderr
    assert not output.exists()


def test_missing_folder_exits_with_message(tmp_path: Path) -> None:
    missing = tmp_path / "missing"
    result = run_app(str(missing), "--screenshot", str(tmp_path / "window.png"))
    assert result.returncode == EXIT_USAGE
    assert f"{missing} is not a folder" in result.stderr


def test_close_during_scoring_exits_cleanly(large_folder: Path) -> None:
    result = run_python("-c", CLOSE_DURING_SCORING, str(large_folder))

    assert result.returncode == 0, result.stderr
    assert "QThread: Destroyed" not in result.stderr
    assert "Traceback" not in result.stderr
    rows, jobs = result.stdout.split()[1::2]
    assert 0 < int(rows) < len(list(large_folder.iterdir()))
    assert jobs == "0"


def test_folder_and_demo_are_exclusive(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([str(tmp_path), "--demo"])
    assert exit_info.value.code == EXIT_USAGE
    assert "either FOLDER or --demo" in capsys.readouterr().err


def test_usage_names_main_script() -> None:
    result = run_python("main.py", "--no-such-option")

    assert result.returncode == EXIT_USAGE
    assert result.stderr.startswith("usage: python main.py [-h]")
    assert "retina-curator" not in result.stderr


def test_help_names_main_script() -> None:
    result = run_python("main.py", "--help")

    assert result.returncode == 0, result.stderr
    assert "Run 'python main.py COMMAND --help'" in " ".join(result.stdout.split())


def test_help_keeps_command_names_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    # At 80 columns, argparse's own layout put "move-" and "rejects" on two lines.
    monkeypatch.setenv("COLUMNS", "80")

    lines = build_parser().format_help().splitlines()

    assert any("move-rejects," in line for line in lines)
    assert not [line for line in lines if line.endswith("-")]


def test_help_names_entry_points(tmp_path: Path) -> None:
    entry_point = Path(sys.executable).parent / "retina-curator"
    assert entry_point.is_file(), f"{entry_point} is missing: run pip install -e . first"
    environment = dict(os.environ, QT_QPA_PLATFORM="offscreen", PYTHONPATH=str(REPOSITORY))

    result = subprocess.run(
        [str(entry_point), "--help"], cwd=tmp_path, env=environment, capture_output=True,
        text=True, timeout=PROCESS_TIMEOUT_S, check=False,
    )
    text = " ".join(result.stdout.split())

    assert result.returncode == 0, result.stderr
    assert text.startswith("usage: retina-curator [-h]")
    assert "Run 'retina-curator-cli COMMAND --help'" in text
    assert "main.py" not in text


def test_no_display_exits_with_message() -> None:
    environment = {name: value for name, value in os.environ.items()
                   if name not in {"DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"}}
    environment["PYTHONPATH"] = str(REPOSITORY)

    result = subprocess.run(
        [sys.executable, "main.py"], cwd=REPOSITORY, env=environment, capture_output=True,
        text=True, timeout=PROCESS_TIMEOUT_S, check=False,
    )

    assert result.returncode == 1, result.stderr
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith("Starting the window failed: no display found (DISPLAY "
                                    "and WAYLAND_DISPLAY are not set), and the window needs one.")
    assert "such as python main.py score FOLDER --csv scores.csv;" in result.stderr


def test_parser_defaults() -> None:
    arguments = build_parser().parse_args([])
    assert arguments.folder is None
    assert not arguments.demo
    assert arguments.screenshot is None
    assert arguments.log_level == "WARNING"
    assert arguments.model is None


def test_screenshot_waits_for_thumbnails(
    mixed_folder: Path, tmp_path: Path, user_cache_folder: Path
) -> None:
    warm, cold = tmp_path / "warm.png", tmp_path / "cold.png"
    assert run_app(str(mixed_folder), "--screenshot", str(warm)).returncode == 0
    # Without their cached thumbnails, the tiles in view decode their files again.
    shutil.rmtree(user_cache_folder / "retina-curator")

    result = run_app(str(mixed_folder), "--screenshot", str(cold))

    assert result.returncode == 0, result.stderr
    # A thumbnail has hundreds of colours, and a "Loading…" tile a few.
    with Image.open(warm) as image:
        warm_colours = len(image.convert("RGB").getcolors(2**24) or [])
    with Image.open(cold) as image:
        cold_colours = len(image.convert("RGB").getcolors(2**24) or [])
    assert cold_colours > 0.9 * warm_colours
