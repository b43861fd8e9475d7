"""Paths of the files bundled in the repository's resources/ folder."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

logger = logging.getLogger(__name__)

RESOURCES_DIR = Path(__file__).resolve().parent.parent / "resources"
DEFAULT_MODEL_PATH = RESOURCES_DIR / "models" / "retina_default.safetensors"
DEMO_DIR = RESOURCES_DIR / "demo"


def demo_working_copy(destination: Path) -> Path:
    """Return `destination`, first copying the bundled demo folder there if it is absent.

    Moving files out and the review state write beside and inside the reviewed
    folder, so the demo is reviewed in a copy and the installed files stay as
    shipped. An existing copy is reused, so a demo review resumes where it stopped.
    """
    if not destination.exists():
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copytree(DEMO_DIR, destination)
        logger.info("copied the demo folder to %s", destination)
    return destination
