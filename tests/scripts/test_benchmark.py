"""Smoke test of scripts/benchmark.py: a quick run on a few dozen images completes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "benchmark.py"

EXPECTED_ROWS = (
    "Scoring 48 28 px PNGs against decoding them",
    "Two processes decoding the 48 PNGs at once against one alone",
    "Scoring 8 2–8 Mpx JPEGs against decoding them",
    "Intake of 8 JPEGs at reduced scale against full decoding",
    "Command `score` on a scored folder against the first run",
    "Window on 200 images: window and first thumbnails",
    "Longest event-loop stall while scoring",
    "Longest event-loop stall while scrolling the whole gallery",
    "Peak resident memory of the window",
    "Window re-opening the scored folder against the first scoring",
    "Training the default model (1 epoch(s))",
)


def test_quick_benchmark_prints_every_row(tmp_path: Path, data_root: Path) -> None:
    environment = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--data-root", str(data_root),
         "--work-dir", str(tmp_path / "work")],
        env=environment, capture_output=True, text=True, timeout=600, check=False,
    )

    assert result.returncode == 0, result.stderr
    rows = [line for line in result.stdout.splitlines() if line.startswith("| ")]
    for expected in EXPECTED_ROWS:
        assert any(row.startswith(f"| {expected}") for row in rows), expected
    assert "CPU:" in result.stdout
    assert len(list((tmp_path / "work" / "large").rglob("*.jpg"))) == 8

