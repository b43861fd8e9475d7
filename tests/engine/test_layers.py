"""Test that the engine runs without Qt."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_engine_imports_without_qt() -> None:
    modules = sorted(
        f"engine.{path.stem}" for path in (REPO / "engine").glob("*.py")
        if path.stem != "__init__"
    )
    # A None entry in sys.modules makes any import of PySide6 fail at once.
    program = (
        "import sys\n"
        "sys.modules['PySide6'] = None\n"
        "sys.modules['gui'] = None\n"
        f"for name in {modules!r}:\n"
        "    __import__(name)\n"
        "print(len([m for m, v in sys.modules.items() if m.startswith('PySide6') and v]))\n"
    )

    result = subprocess.run(
        [sys.executable, "-c", program], cwd=REPO, capture_output=True, text=True, check=False
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "0"
    assert len(modules) >= 8
