"""Ctrl+C and SIGTERM that reach move-rejects, undo or export once their work is complete."""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import pty
import select
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any, TextIO

import pytest
from review_files import backdate, copy_blood_jpgs, inventory_by_path, write_retina_pngs

from engine import export
from engine.cli import EXIT_OK, main
from engine.interrupts import StopSignals, stops_held

REPO = Path(__file__).resolve().parents[2]

# Every score is above 0, so move-rejects moves every image.
MOVE_ALL = ("--threshold", "0")
SIGNAL_IDS = ["SIGINT", "SIGTERM"]


@pytest.fixture
def mixed_folder(data_root: Path, tmp_path: Path) -> Path:
    """Twelve RetinaMNIST images and four blood-cell photos, dated an hour back."""
    folder = tmp_path / "mixed"
    write_retina_pngs(data_root, folder, 12)
    copy_blood_jpgs(data_root, folder / "blood", 4)
    backdate(folder)
    return folder


class SignalOnSummary(io.TextIOBase):
    """Text stream that sends a signal to this process when a line starting with
    `prefix` is about to be written, then writes it to `stream`.
    """

    def __init__(self, stream: TextIO, prefix: str, signal_number: int) -> None:
        super().__init__()
        self.stream = stream
        self.prefix = prefix
        self.signal_number = signal_number
        self.sent = False

    def write(self, text: str) -> int:
        if not self.sent and text.startswith(self.prefix):
            self.sent = True
            signal.raise_signal(self.signal_number)
        return self.stream.write(text)

    def flush(self) -> None:
        self.stream.flush()


def run_signalled_after_line(
    arguments: list[str], prefix: str, signal_number: int, tmp_path: Path
) -> tuple[int, list[str], str]:
    """Run `python main.py ARGUMENTS` with stdout on a terminal, and send `signal_number`
    as soon as a line starting with `prefix` appears there.

    Returns the exit code, the lines of stdout and stderr. The terminal makes stdout
    line-buffered, as for a user at a shell, so the line appears when it is printed.
    NOTE: a child that exits before the signal arrives passes without being
    signalled. With torch loaded, its shutdown takes longer than the test's reaction.
    """
    controller, terminal = pty.openpty()
    stderr_path = tmp_path / "stderr.txt"
    with stderr_path.open("w") as stderr:
        process = subprocess.Popen([sys.executable, "main.py", *arguments], cwd=REPO,
                                   stdout=terminal, stderr=stderr)
    os.close(terminal)
    line_start = f"\n{prefix}".encode()
    output = b""
    sent = False
    try:
        while True:
            ready, _, _ = select.select([controller], [], [], 300)
            assert ready, f"no output from {arguments} for 300 s"
            try:
                chunk = os.read(controller, 4096)
            except OSError:
                # Linux reports EIO once the child has closed the terminal.
                break
            if not chunk:
                break
            output += chunk
            if not sent and line_start in b"\n" + output:
                process.send_signal(signal_number)
                sent = True
    finally:
        os.close(controller)
    code = process.wait(timeout=120)
    assert sent, f"no line starting with {prefix!r} in the output of {arguments}"
    lines = output.decode().replace("\r\n", "\n").splitlines()
    return code, lines, stderr_path.read_text().replace("\r", "\n")


def check_no_stop_reported(errors: str) -> None:
    assert "interrupted" not in errors
    assert "Traceback" not in errors
    assert "KeyboardInterrupt" not in errors


def read_manifest(path: Path) -> dict[str, Any]:
    with path.open(encoding="utf-8") as stream:
        document: dict[str, Any] = json.load(stream)
    return document


@pytest.mark.parametrize("signal_number", [signal.SIGINT, signal.SIGTERM], ids=SIGNAL_IDS)
def test_late_signal_after_export(
    mixed_folder: Path, tmp_path: Path, signal_number: int
) -> None:
    destination = tmp_path / "clean"

    code, lines, errors = run_signalled_after_line(
        ["export", str(mixed_folder), "--to", str(destination)], "Exported ", signal_number,
        tmp_path)
    manifest = read_manifest(destination / "manifest.json")

    assert code == EXIT_OK, errors
    assert lines[-1].startswith(f"Exported {manifest['summary']['exported']} files to "
                                f"{destination}.")
    check_no_stop_reported(errors)
    assert manifest["complete"] is True


@pytest.mark.parametrize("signal_number", [signal.SIGINT, signal.SIGTERM], ids=SIGNAL_IDS)
def test_late_signal_after_move_rejects(
    mixed_folder: Path, tmp_path: Path, signal_number: int
) -> None:
    before = inventory_by_path(mixed_folder)
    quarantine = tmp_path / "quarantine"

    code, lines, errors = run_signalled_after_line(
        ["move-rejects", str(mixed_folder), "--to", str(quarantine), *MOVE_ALL], "Moved ",
        signal_number, tmp_path)
    undo_code = main(["undo", str(mixed_folder)])

    assert code == EXIT_OK, errors
    assert lines[-1] == (f"Moved 16 of 16 files with the final decision reject to "
                         f"{quarantine}.")
    check_no_stop_reported(errors)
    # The batch is recorded, so undo brings every file back.
    assert undo_code == EXIT_OK
    assert inventory_by_path(mixed_folder) == before


def test_late_sigterm_after_undo(mixed_folder: Path, tmp_path: Path) -> None:
    before = inventory_by_path(mixed_folder)
    main(["move-rejects", str(mixed_folder), "--to", str(tmp_path / "quarantine"), *MOVE_ALL])

    code, lines, errors = run_signalled_after_line(
        ["undo", str(mixed_folder)], "Moved ", signal.SIGTERM, tmp_path)

    assert code == EXIT_OK, errors
    assert lines[-1] == f"Moved 16 of 16 files back into {mixed_folder}."
    check_no_stop_reported(errors)
    assert inventory_by_path(mixed_folder) == before


@pytest.mark.parametrize(("command", "summary"), [
    (["export", "{folder}", "--to", "{tmp}/clean"], "Exported "),
    (["move-rejects", "{folder}", "--to", "{tmp}/quarantine", *MOVE_ALL], "Moved "),
], ids=["export", "move-rejects"])
@pytest.mark.parametrize("signal_number", [signal.SIGINT, signal.SIGTERM], ids=SIGNAL_IDS)
def test_signal_during_summary_keeps_it(
    mixed_folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str], command: list[str], summary: str, signal_number: int,
) -> None:
    arguments = [part.format(folder=mixed_folder, tmp=tmp_path) for part in command]
    stream = SignalOnSummary(sys.stdout, summary, signal_number)
    monkeypatch.setattr(sys, "stdout", stream)
    previous = {number: signal.getsignal(number) for number in (signal.SIGINT, signal.SIGTERM)}

    code = main(arguments)
    handlers = {number: signal.getsignal(number) for number in previous}
    monkeypatch.undo()
    output = capsys.readouterr()

    assert stream.sent
    assert code == EXIT_OK, output.err
    assert output.out.splitlines()[-1].startswith(summary)
    check_no_stop_reported(output.err)
    # Called in-process, the command leaves the handlers as it found them.
    assert handlers == previous


class SignalOnExportLog(logging.Handler):
    """Send SIGINT to this process when engine.export logs the end of a run.

    That line is logged once both manifests are written, before the run returns.
    """

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.sent = False

    def emit(self, record: logging.LogRecord) -> None:
        if record.msg.startswith("Exported %d files of %s"):
            self.sent = True
            signal.raise_signal(signal.SIGINT)


def test_signal_after_manifests_written(
    mixed_folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    destination = tmp_path / "clean"
    export_logger = logging.getLogger("engine.export")
    signaller = SignalOnExportLog()
    export_logger.addHandler(signaller)
    level = export_logger.level
    export_logger.setLevel(logging.INFO)
    try:
        code = main(["export", str(mixed_folder), "--to", str(destination)])
    finally:
        export_logger.removeHandler(signaller)
        export_logger.setLevel(level)
    output = capsys.readouterr()
    manifest = read_manifest(destination / "manifest.json")

    assert signaller.sent
    assert code == EXIT_OK, output.err
    assert output.out.splitlines()[-1].startswith(
        f"Exported {manifest['summary']['exported']} files to {destination}.")
    check_no_stop_reported(output.err)
    assert manifest["complete"] is True


@pytest.mark.parametrize("signal_number", [signal.SIGINT, signal.SIGTERM], ids=SIGNAL_IDS)
def test_signal_while_manifests_written(
    mixed_folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch, signal_number: int,
) -> None:
    # The signal comes as the JSON manifest is created, once every file is copied
    # and the CSV manifest written.
    destination = tmp_path / "clean"
    create = export.new_text_file
    sent = []

    def create_and_signal(path: Path) -> contextlib.AbstractContextManager[TextIO]:
        if path.suffix == ".json":
            sent.append(path)
            signal.raise_signal(signal_number)
        return create(path)

    monkeypatch.setattr(export, "new_text_file", create_and_signal)
    code = main(["export", str(mixed_folder), "--to", str(destination)])
    output = capsys.readouterr()
    manifest = read_manifest(destination / "manifest.json")

    assert sent
    assert code == EXIT_OK, output.err
    check_no_stop_reported(output.err)
    assert manifest["complete"] is True
    assert len(manifest["files"]) == 16


def test_stop_held_in_failed_block_is_dropped() -> None:
    with StopSignals(sigterm=True, until_exit=False):
        with pytest.raises(ValueError), stops_held():
            signal.raise_signal(signal.SIGTERM)
            raise ValueError("the block failed")
        # The stop went with the failure, so a later block runs to its end.
        with stops_held():
            finished = True

    assert finished
