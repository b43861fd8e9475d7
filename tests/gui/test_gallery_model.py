"""Tests of the gallery list model: flags, overrides, final decisions, counts and formatting."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from PySide6.QtCore import QModelIndex, Qt
from pytestqt.qtbot import QtBot

from engine.decisions import Decision
from engine.images import Status
from engine.scoring import ScoredFile
from gui.gallery_model import (
    GalleryCounts,
    GalleryItem,
    GalleryModel,
    GalleryRole,
    RejectionReasons,
    format_score,
)
from gui.gallery_proxy import FilterMode, GalleryProxyModel, SortKey

THRESHOLD = 0.01


def make_item(relative_path: str, score: float | None, status: Status = Status.OK) -> GalleryItem:
    record = ScoredFile(
        path=Path("/data") / relative_path,
        relative_path=relative_path,
        status=status if score is None else Status.OK,
        detail="" if score is not None else "damaged or truncated",
        score=score,
        flagged=None if score is None else score > THRESHOLD,
        thumbnail=None,
        width=28,
        height=28,
        format="PNG",
    )
    return GalleryItem.create(record, None)


ITEMS = [
    make_item("b.png", 0.002),
    make_item("A.png", 0.5),
    make_item("sub/c.png", None, Status.DAMAGED),
    make_item("d.png", 0.02),
    make_item("e.png", THRESHOLD),  # exactly at the threshold: kept
]


@pytest.fixture
def model(qtbot: QtBot) -> GalleryModel:
    gallery = GalleryModel(THRESHOLD)
    gallery.append_items(ITEMS)
    return gallery


@pytest.fixture
def proxy(model: GalleryModel) -> GalleryProxyModel:
    sorted_model = GalleryProxyModel()
    sorted_model.setSourceModel(model)
    return sorted_model


def proxy_paths(proxy: GalleryProxyModel) -> list[str]:
    return [proxy.index(row, 0).data(GalleryRole.RELATIVE_PATH) for row in range(proxy.rowCount())]


def test_empty_model_initial_state(qtbot: QtBot) -> None:
    gallery = GalleryModel(THRESHOLD)
    assert gallery.rowCount() == 0
    assert gallery.counts() == GalleryCounts()
    assert gallery.rejected_paths() == []
    assert gallery.overrides() == {}


def test_append_inserts_batch_once(qtbot: QtBot) -> None:
    gallery = GalleryModel(THRESHOLD)
    inserted: list[tuple[int, int]] = []
    gallery.rowsInserted.connect(lambda _parent, first, last: inserted.append((first, last)))
    with qtbot.waitSignal(gallery.counts_changed, timeout=1000):
        gallery.append_items(ITEMS[:3])
    gallery.append_items(ITEMS[3:])
    assert inserted == [(0, 2), (3, 4)]
    assert gallery.rowCount() == len(ITEMS)


def test_roles_of_scored_and_unreadable_rows(model: GalleryModel) -> None:
    scored = model.index(1)
    assert scored.data(Qt.ItemDataRole.DisplayRole) == "A.png"
    assert scored.data(GalleryRole.SCORE) == 0.5
    assert scored.data(GalleryRole.FLAGGED) is True
    assert scored.data(GalleryRole.STATUS) == "ok"
    assert scored.data(GalleryRole.RECORD) is ITEMS[1].record
    assert scored.data(GalleryRole.SCORE_SORT_KEY) == 0.5

    unreadable = model.index(2)
    assert unreadable.data(GalleryRole.SCORE) is None
    assert unreadable.data(GalleryRole.FLAGGED) is None
    assert unreadable.data(GalleryRole.STATUS) == "damaged"
    assert unreadable.data(GalleryRole.SCORE_SORT_KEY) == -math.inf
    assert "damaged or truncated" in unreadable.data(Qt.ItemDataRole.ToolTipRole)


def test_counts_and_rejected_paths(model: GalleryModel) -> None:
    assert model.counts() == GalleryCounts(total=5, flagged=2, kept=2, rejected=3, unreadable=1)
    # The unreadable file is rejected too, as the engine decides.
    assert model.rejected_paths() == ["A.png", "sub/c.png", "d.png"]
    assert model.rejection_reasons() == RejectionReasons(flagged=2, unreadable=1, curator=0)


def test_threshold_change_reflags_rows(qtbot: QtBot, model: GalleryModel) -> None:
    with qtbot.waitSignal(model.dataChanged, timeout=1000) as changed:
        model.set_threshold(0.001)
    assert GalleryRole.FLAGGED in changed.args[2]
    assert model.counts() == GalleryCounts(total=5, flagged=4, kept=0, rejected=5, unreadable=1)
    assert model.index(0).data(GalleryRole.FLAGGED) is True


def test_threshold_without_flag_change_is_silent(qtbot: QtBot, model: GalleryModel) -> None:
    with qtbot.assertNotEmitted(model.dataChanged):
        model.set_threshold(0.015)


def test_remove_paths_removes_rows(model: GalleryModel) -> None:
    removed = model.remove_paths(["A.png", "sub/c.png", "e.png", "not-in-model.png"])
    assert [item.record.relative_path for item in removed] == ["A.png", "sub/c.png", "e.png"]
    assert [model.index(row).data(GalleryRole.RELATIVE_PATH) for row in range(2)] == [
        "b.png", "d.png",
    ]
    assert model.counts() == GalleryCounts(total=2, flagged=1, kept=1, rejected=1)
    assert model.row_of("d.png") == 1
    assert model.row_of("A.png") is None


def test_clear_removes_everything(model: GalleryModel) -> None:
    model.clear()
    assert model.rowCount() == 0
    assert model.counts() == GalleryCounts()


def test_rows_have_no_children(model: GalleryModel) -> None:
    assert model.rowCount(model.index(0)) == 0
    assert model.data(QModelIndex()) is None


def test_proxy_sorts_by_score_unreadable_last(proxy: GalleryProxyModel) -> None:
    assert proxy.sort_key is SortKey.SCORE
    assert proxy_paths(proxy) == ["A.png", "d.png", "e.png", "b.png", "sub/c.png"]


def test_proxy_sorts_by_name_ignoring_case(proxy: GalleryProxyModel) -> None:
    proxy.set_sort_key(SortKey.NAME)
    assert proxy_paths(proxy) == ["A.png", "b.png", "d.png", "e.png", "sub/c.png"]


def test_proxy_keeps_order_for_new_rows(model: GalleryModel, proxy: GalleryProxyModel) -> None:
    model.append_items([make_item("f.png", 0.9), make_item("g.png", 0.0)])
    assert proxy_paths(proxy)[0] == "f.png"
    assert proxy_paths(proxy)[-2:] == ["g.png", "sub/c.png"]


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        (FilterMode.ALL, {"A.png", "b.png", "sub/c.png", "d.png", "e.png"}),
        (FilterMode.FLAGGED, {"A.png", "d.png"}),
        (FilterMode.KEPT, {"b.png", "e.png"}),
        (FilterMode.REJECTED, {"A.png", "d.png", "sub/c.png"}),
        (FilterMode.OVERRIDDEN, set()),
        (FilterMode.PROBLEMS, {"sub/c.png"}),
    ],
)
def test_proxy_filter_modes(
    proxy: GalleryProxyModel, mode: FilterMode, expected: set[str]
) -> None:
    proxy.set_filter_mode(mode)
    assert proxy.filter_mode is mode
    assert set(proxy_paths(proxy)) == expected


def test_proxy_filter_follows_threshold(model: GalleryModel, proxy: GalleryProxyModel) -> None:
    proxy.set_filter_mode(FilterMode.FLAGGED)
    model.set_threshold(0.1)
    assert proxy_paths(proxy) == ["A.png"]
    model.set_threshold(0.0)
    assert proxy_paths(proxy) == ["A.png", "d.png", "e.png", "b.png"]


@pytest.mark.parametrize(
    ("score", "text"),
    [
        (0.0123, "0.0123"),
        (0.5, "0.500"),
        (0.00412345, "0.00412"),  # below 0.1: more decimals keep 3 significant digits
        (0.0000123, "0.0000123"),
        (0.0, "0.00"),
        (1.25, "1.25"),
        (37.456, "37.46"),
    ],
)
def test_format_score(score: float, text: str) -> None:
    assert format_score(score) == text


def test_threshold_change_signals_changed_rows(qtbot: QtBot, model: GalleryModel) -> None:
    ranges: list[tuple[int, int]] = []
    model.dataChanged.connect(lambda first, last, _roles: ranges.append((first.row(), last.row())))
    model.set_threshold(0.001)
    # Only b.png (row 0) and e.png (row 4) cross the new threshold.
    assert ranges == [(0, 0), (4, 4)]


def test_threshold_change_emits_threshold_changed(qtbot: QtBot, model: GalleryModel) -> None:
    with qtbot.waitSignal(model.threshold_changed, timeout=1000) as changed:
        model.set_threshold(0.003)
    assert changed.args == [0.003]
    assert model.threshold == 0.003


def test_same_threshold_is_silent(qtbot: QtBot, model: GalleryModel) -> None:
    with qtbot.assertNotEmitted(model.threshold_changed):
        model.set_threshold(THRESHOLD)


def test_override_sets_final_decision(qtbot: QtBot, model: GalleryModel) -> None:
    with qtbot.waitSignal(model.dataChanged, timeout=1000) as changed:
        assert model.set_override(["A.png"], Decision.KEEP) == 1
    # The proxy filters on FLAGGED, so that role must be named for the row to be re-filtered.
    assert GalleryRole.FLAGGED in changed.args[2]
    assert GalleryRole.DECISION in changed.args[2]
    scored = model.index(1)
    assert scored.data(GalleryRole.FLAGGED) is True
    assert scored.data(GalleryRole.OVERRIDE) == "keep"
    assert scored.data(GalleryRole.DECISION) == "keep"
    assert model.tile(1).override is Decision.KEEP
    assert "Keep (your decision)" in scored.data(Qt.ItemDataRole.ToolTipRole)
    assert model.counts() == GalleryCounts(total=5, flagged=2, kept=3, rejected=2,
                                           unreadable=1, overridden=1)


def test_override_survives_threshold_changes(model: GalleryModel) -> None:
    model.set_override(["A.png"], Decision.KEEP)
    model.set_override(["b.png"], Decision.REJECT)
    for threshold in (0.0, 0.001, 0.1, 1.0):
        model.set_threshold(threshold)
        assert model.decision_at(1) is Decision.KEEP, threshold
        assert model.decision_at(0) is Decision.REJECT, threshold
    assert model.flag_at(1) is False  # at 1.0 the model keeps A.png by itself
    assert model.rejection_reasons() == RejectionReasons(flagged=0, unreadable=1, curator=1)


def test_clear_override_restores_model_decision(model: GalleryModel) -> None:
    model.set_override(["A.png", "b.png"], Decision.KEEP)
    assert model.set_override(["A.png"], None) == 1
    assert model.decision_at(1) is Decision.REJECT
    assert model.override_at(1) is None
    assert model.overrides() == {"b.png": Decision.KEEP}


def test_override_of_unlisted_file_waits(model: GalleryModel) -> None:
    assert model.set_override(["later.png"], Decision.REJECT) == 0
    model.append_items([make_item("later.png", 0.0001)])
    row = model.row_of("later.png")
    assert row == 5
    assert model.override_at(row) is Decision.REJECT
    assert model.decision_at(row) is Decision.REJECT


def test_overrides_survive_clear_and_rescan(model: GalleryModel) -> None:
    model.set_override(["d.png"], Decision.KEEP)
    model.clear()
    model.append_items(ITEMS)
    assert model.decision_at(model.row_of("d.png")) is Decision.KEEP


def test_set_overrides_replaces_all(model: GalleryModel) -> None:
    model.set_override(["A.png"], Decision.KEEP)
    model.set_overrides({"sub/c.png": Decision.KEEP})
    assert model.override_at(1) is None
    # A curator may keep a file the model could not read.
    assert model.decision_at(2) is Decision.KEEP
    assert model.counts() == GalleryCounts(total=5, flagged=2, kept=3, rejected=2,
                                           unreadable=1, overridden=1)


def test_proxy_filter_follows_overrides(model: GalleryModel, proxy: GalleryProxyModel) -> None:
    proxy.set_filter_mode(FilterMode.KEPT)
    model.set_override(["b.png"], Decision.REJECT)
    assert proxy_paths(proxy) == ["e.png"]
    proxy.set_filter_mode(FilterMode.OVERRIDDEN)
    assert proxy_paths(proxy) == ["b.png"]
    model.set_override(["b.png"], None)
    assert proxy_paths(proxy) == []
