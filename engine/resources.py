"""Paths of the files bundled in the repository's resources/ folder."""

from __future__ import annotations

from pathlib import Path

RESOURCES_DIR = Path(__file__).resolve().parent.parent / "resources"
DEFAULT_MODEL_PATH = RESOURCES_DIR / "models" / "retina_default.safetensors"
DEMO_DIR = RESOURCES_DIR / "demo"
