"""Program name for usage lines and hints, and detection of sub-command arguments."""

from __future__ import annotations

import difflib
import logging
import os
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path

logger = logging.getLogger(__name__)

COMMANDS = ("train", "score", "evaluate", "move-rejects", "undo", "export")
# The names pip installs for the command line and the window (pyproject.toml).
CLI_ENTRY_POINT = "retina-curator-cli"
WINDOW_ENTRY_POINT = "retina-curator"
_MAIN_SCRIPT = "main.py"


def program_name(entry_point: str = CLI_ENTRY_POINT) -> str:
    """Return the command that runs `entry_point`'s program the way this process was started.

    When this process runs main.py, that is `python main.py`, with the script path as
    it was typed and quoted for a POSIX shell, because main.py runs both the window
    and the sub-commands. Otherwise, as through the installed entry points, it is
    `entry_point`. The interpreter is always written as `python`, because the name
    typed for it is not known.
    """
    script = sys.argv[0] if sys.argv else ""
    if Path(script).name == _MAIN_SCRIPT:
        return f"python {shlex.quote(script)}"
    return entry_point


def wants_command(arguments: Sequence[str]) -> bool:
    """Return True if main.py's `arguments` are meant for a sub-command, not the window.

    They are when they start with a sub-command, or with a word that names no existing
    file or folder and either resembles a sub-command or is followed by another
    argument that is not an option, as in `scor FOLDER`. An existing FOLDER, a
    missing path with a folder separator, and options first open the window.
    """
    if not arguments:
        return False
    first = arguments[0]
    if first in COMMANDS:
        return True
    separators = [separator for separator in (os.sep, os.altsep) if separator]
    if (first.startswith("-") or any(separator in first for separator in separators)
            or os.path.lexists(first)):
        return False
    followed_by_argument = len(arguments) > 1 and not arguments[1].startswith("-")
    return followed_by_argument or bool(_closest_command(first))


def unknown_command_message(word: str) -> str:
    """Return argparse's message for an invalid sub-command, naming the closest one."""
    choices = ", ".join(repr(command) for command in COMMANDS)
    closest = _closest_command(word)
    hint = f" Did you mean {closest!r}?" if closest else ""
    return f"argument command: invalid choice: {word!r} (choose from {choices}).{hint}"


def _closest_command(word: str) -> str:
    matches = difflib.get_close_matches(word, COMMANDS, n=1)
    return matches[0] if matches else ""
