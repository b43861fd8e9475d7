"""Tests of the model facts shown in the status bar's tooltip and the About This Model dialog."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest
from PySide6.QtWidgets import QDialogButtonBox
from pytestqt.qtbot import QtBot

from engine.modelfile import ReferenceModel
from gui.model_info import ModelInfoDialog, format_created, model_facts
from gui.score_format import format_threshold


def test_format_created_in_local_time() -> None:
    moment = datetime(2026, 3, 1, 12, 30, tzinfo=UTC)
    expected = moment.astimezone().strftime("%Y-%m-%d %H:%M")
    assert format_created("2026-03-01T12:30:00+00:00") == expected


@pytest.mark.parametrize(("value", "text"), [
    (None, "unknown"),  # a model file without the field
    ("", "unknown"),
    (20260301, "unknown"),  # a number where text belongs
    ("2026-03-01T12:30:00", "2026-03-01 12:30"),  # no UTC offset: shown as written
    ("last spring", "last spring"),  # not ISO 8601: shown as written
])
def test_format_created_edge_cases(value: object, text: str) -> None:
    assert format_created(value) == text


def test_facts_of_unsaved_model_without_training(default_model: ReferenceModel) -> None:
    bare = replace(default_model, training={}, path=None, name="unsaved model")
    facts = dict(model_facts(bare))
    assert facts["Training data"] == "unknown"
    assert facts["Trained"] == "unknown"
    assert facts["Images trained on"] == "unknown"
    assert facts["Images held out"] == "unknown, to set the threshold"
    assert facts["File"] == "not saved"
    assert facts["Calibrated threshold"].startswith(
        f"{format_threshold(default_model.threshold)}, ")
    assert "of the 360 held-out clean images (target 1 %)" in facts["Calibrated threshold"]


def test_info_dialog_shows_every_fact(qtbot: QtBot, default_model: ReferenceModel) -> None:
    dialog = ModelInfoDialog(default_model)
    qtbot.addWidget(dialog)
    assert dialog.windowTitle() == "About retina_default"
    for label, value in model_facts(default_model):
        assert dialog.value(label) == value


def test_info_dialog_has_no_empty_band(qtbot: QtBot, default_model: ReferenceModel) -> None:
    dialog = ModelInfoDialog(default_model)
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.waitExposed(dialog)

    last_value = dialog.value_labels["File"]
    [buttons] = dialog.findChildren(QDialogButtonBox)
    gap = buttons.geometry().top() - last_value.geometry().bottom()

    # The layout's spacing, not the height that the values would take if narrower.
    assert gap <= 2 * dialog.layout().spacing()
