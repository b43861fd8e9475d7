"""Test that the shipped model loads and reproduces its model card."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from engine import evaluation
from engine.modelcard import card_path, evaluation_path
from engine.modelfile import ReferenceModel
from engine.resources import DEFAULT_MODEL_PATH


@pytest.fixture(scope="module")
def results(default_model: ReferenceModel, data_root: Path) -> list[evaluation.SourceResult]:
    return list(evaluation.evaluate(default_model, data_root))


def test_card_metrics_reproduced(
    default_model: ReferenceModel, results: list[evaluation.SourceResult]
) -> None:
    card = json.loads(evaluation_path(DEFAULT_MODEL_PATH).read_text(encoding="utf-8"))
    expected = {row["source"]: row for row in card["sources"]}

    assert card["fingerprint"] == default_model.fingerprint
    assert {result.source.name for result in results} == set(expected)
    for result in results:
        row = expected[result.source.name]
        assert result.scores.size == row["n"], result.source.name
        assert result.flagged_fraction == pytest.approx(row["flagged_fraction"], abs=0.005)
        if row["auroc"] is None:
            assert math.isnan(result.auroc), result.source.name
        else:
            assert result.auroc == pytest.approx(row["auroc"], abs=0.005)


def test_card_describes_training(default_model: ReferenceModel) -> None:
    text = card_path(DEFAULT_MODEL_PATH).read_text(encoding="utf-8")

    assert default_model.fingerprint in text
    assert "python main.py train --medmnist-root" in text
    assert default_model.training["data"] in text


def test_retina_kept_and_blood_flagged(results: list[evaluation.SourceResult]) -> None:
    by_name = {result.source.name: result for result in results}

    assert by_name["RetinaMNIST test"].flagged_fraction <= 0.01
    assert by_name["PBC blood cells 28 px"].flagged_fraction >= 0.995
