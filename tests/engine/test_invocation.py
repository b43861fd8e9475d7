"""Tests of the program name in hints and of telling sub-commands from window arguments."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from engine.invocation import (
    CLI_ENTRY_POINT,
    WINDOW_ENTRY_POINT,
    program_name,
    unknown_command_message,
    wants_command,
)


@pytest.mark.parametrize(("script", "entry_point", "expected"), [
    # python main.py, from the checkout
    ("main.py", CLI_ENTRY_POINT, "python main.py"),
    # main.py run from another folder: the path as typed, quoted for the shell
    ("/opt/retina curator/main.py", CLI_ENTRY_POINT, "python '/opt/retina curator/main.py'"),
    # main.py also starts the window
    ("main.py", WINDOW_ENTRY_POINT, "python main.py"),
    # the installed command line
    ("/venv/bin/retina-curator-cli", CLI_ENTRY_POINT, "retina-curator-cli"),
    # the installed window, whose hints name the installed command line
    ("/venv/bin/retina-curator", CLI_ENTRY_POINT, "retina-curator-cli"),
    ("/venv/bin/retina-curator", WINDOW_ENTRY_POINT, "retina-curator"),
])
def test_program_name_follows_script(
    monkeypatch: pytest.MonkeyPatch, script: str, entry_point: str, expected: str
) -> None:
    monkeypatch.setattr(sys, "argv", [script, "score"])

    assert program_name(entry_point) == expected


@pytest.mark.parametrize(("arguments", "expected"), [
    (["score", "photos"], True),  # a sub-command
    (["scor", "photos"], True),  # a mistyped sub-command before a folder
    (["scor"], True),  # a mistyped sub-command alone
    (["frobnicate", "photos"], True),  # an unknown word before another argument
    (["photos"], False),  # an existing folder opens the window
    (["existing", "extra"], False),  # an existing folder also with another argument
    (["scores"], False),  # an existing folder named like a sub-command
    (["missing"], False),  # a missing folder: the window reports it
    (["missing", "--model", "m.safetensors"], False),  # a missing folder, then options
    (["sub/scor"], False),  # a path with a separator is never a sub-command
    (["--demo"], False),  # options only
    ([], False),  # no arguments: an empty window
])
def test_wants_command_table(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, arguments: list[str], expected: bool
) -> None:
    for name in ("photos", "existing", "scores"):
        (tmp_path / name).mkdir()
    monkeypatch.chdir(tmp_path)

    assert wants_command(arguments) is expected


def test_unknown_command_message_suggests() -> None:
    message = unknown_command_message("scor")

    assert message.startswith("argument command: invalid choice: 'scor' (choose from 'train', "
                              "'score', 'evaluate', 'move-rejects', 'undo', 'export').")
    assert message.endswith(" Did you mean 'score'?")


def test_unknown_command_message_without_match() -> None:
    assert "Did you mean" not in unknown_command_message("frobnicate")
