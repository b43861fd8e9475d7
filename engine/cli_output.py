"""Checks that a command can write its output file, and writing that file in one step."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

from engine.names import folder_problem


def existing_output_problem(path: Path, overwrite: bool) -> str:
    """Return why what is at the output `path` now cannot be replaced, or an empty string.

    Outputs are written beside and moved into place, which would put a regular
    file where a device or a pipe was: `--csv /dev/null` run as root would
    replace the device.
    """
    if path.is_dir():
        return f"{path} is a folder. Pass a file path."
    if path.exists() and not path.is_file():
        return f"{path} is not a regular file (a device, a pipe or a socket). Pass a file path."
    # lexists: a broken link is there too, and writing would replace it.
    if os.path.lexists(path) and not overwrite:
        return f"{path} exists. Pass --overwrite to replace it, or another path."
    return ""


def unwritable_folder(path: Path) -> str:
    """Return why no file can be written beside `path`, or an empty string.

    Creates the missing parent folders of `path`, as writing it would. Checked
    before the work, so that a read-only destination fails at once rather than
    after scoring a whole folder or training a model.
    """
    problem = folder_problem(path.parent)
    if problem:
        return f"{problem}. Choose another path."
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path.parent):
            pass
    except OSError as error:
        return f"cannot write to {path.parent}: {error.strerror or error}. Choose another path."
    return ""


def write_failure(path: Path, error: OSError) -> str:
    return f"cannot write {path}: {error.strerror or error}"


@contextlib.contextmanager
def atomic_text_file(path: Path, errors: str = "strict") -> Iterator[TextIO]:
    """Write a UTF-8 text file beside `path` and move it into place only when complete."""
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "w", newline="", encoding="utf-8", errors=errors) as stream:
            yield stream
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
