"""Tests of the gallery list model: flags, overrides, final decisions and counts."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from PySide6.QtCore import QModelIndex, QPersistentModelIndex, Qt
from pytestqt.qtbot import QtBot

from engine.decisions import Decision
from engine.images import Status
from engine.scoring import ScoredFile
from gui.gallery_items import GalleryCounts, GalleryItem, RejectionReasons
from gui.gallery_model import GalleryModel
from gui.gallery_proxy import FilterMode, GalleryProxyModel, SortKey
from gui.gallery_roles import GalleryRole

THRESHOLD = 0.01


def make_item(relative_path: str, score: float | None, status: Status = Status.OK) -> GalleryItem:
    record = ScoredFile(
        root=Path("/data"),
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
    gallery.insert_items(ITEMS)
    return gallery


@pytest.fixture
def proxy(model: GalleryModel) -> GalleryProxyModel:
    sorted_model = GalleryProxyModel()
    sorted_model.setSourceModel(model)
    return sorted_model


def proxy_paths(proxy: GalleryProxyModel) -> list[str]:
    return [proxy.index(row, 0).data(GalleryRole.RELATIVE_PATH) for row in range(proxy.rowCount())]


def model_paths(model: GalleryModel) -> list[str]:
    return [model.index(row).data(GalleryRole.RELATIVE_PATH) for row in range(model.rowCount())]


def test_empty_model_initial_state(qtbot: QtBot) -> None:
    gallery = GalleryModel(THRESHOLD)
    assert gallery.rowCount() == 0
    assert gallery.counts() == GalleryCounts()
    assert gallery.rejected_paths() == []
    assert gallery.overrides() == {}


def test_insert_signals_runs_of_rows(qtbot: QtBot) -> None:
    gallery = GalleryModel(THRESHOLD)
    inserted: list[tuple[int, int]] = []
    gallery.rowsInserted.connect(lambda _parent, first, last: inserted.append((first, last)))
    with qtbot.waitSignal(gallery.counts_changed, timeout=1000):
        gallery.insert_items(ITEMS[:3])
    # d.png and e.png fall between A.png and b.png, so they are one run.
    gallery.insert_items(ITEMS[3:])
    assert inserted == [(0, 2), (1, 2)]
    assert model_paths(gallery) == ["A.png", "d.png", "e.png", "b.png", "sub/c.png"]


def test_insert_scattered_rows_keeps_order(qtbot: QtBot) -> None:
    gallery = GalleryModel(THRESHOLD)
    gallery.insert_items([make_item(f"{index}.png", index / 10) for index in (8, 6, 4, 2)])
    inserted: list[tuple[int, int]] = []
    gallery.rowsInserted.connect(lambda _parent, first, last: inserted.append((first, last)))
    gallery.insert_items([make_item(f"{index}.png", index / 10) for index in (1, 9, 5, 3, 7)])
    assert inserted == [(0, 0), (2, 2), (4, 4), (6, 6), (8, 8)]
    assert model_paths(gallery) == [f"{index}.png" for index in range(9, 0, -1)]
    assert [gallery.row_of(f"{index}.png") for index in (9, 1)] == [0, 8]


def test_equal_scores_keep_arrival_order(qtbot: QtBot) -> None:
    gallery = GalleryModel(THRESHOLD)
    gallery.insert_items([make_item("first.png", 0.1), make_item("second.png", 0.1)])
    gallery.insert_items([make_item("third.png", 0.1)])
    assert model_paths(gallery) == ["first.png", "second.png", "third.png"]


def test_sort_key_change_moves_rows_and_indexes(model: GalleryModel) -> None:
    persistent = QPersistentModelIndex(model.index(model.row_of("A.png") or 0))
    with_layout: list[str] = []
    model.layoutChanged.connect(lambda: with_layout.append("changed"))
    model.set_sort_key(SortKey.NAME)
    assert model.sort_key is SortKey.NAME
    assert with_layout == ["changed"]
    assert model_paths(model) == ["A.png", "b.png", "d.png", "e.png", "sub/c.png"]
    assert persistent.data(GalleryRole.RELATIVE_PATH) == "A.png"
    assert model.row_of("sub/c.png") == 4
    # New rows go to their place in the order now in use.
    model.insert_items([make_item("c.png", 0.9)])
    assert model_paths(model)[2] == "c.png"
    model.set_sort_key(SortKey.SCORE)
    assert model_paths(model)[:2] == ["c.png", "A.png"]


def test_roles_of_scored_and_unreadable_rows(model: GalleryModel) -> None:
    scored = model.index(model.row_of("A.png") or 0)
    assert scored.data(Qt.ItemDataRole.DisplayRole) == "A.png"
    assert scored.data(GalleryRole.SCORE) == 0.5
    assert scored.data(GalleryRole.FLAGGED) is True
    assert scored.data(GalleryRole.STATUS) == "ok"
    assert scored.data(GalleryRole.RECORD) is ITEMS[1].record
    assert scored.data(GalleryRole.SCORE_SORT_KEY) == 0.5

    unreadable = model.index(model.row_of("sub/c.png") or 0)
    assert unreadable.data(GalleryRole.SCORE) is None
    assert unreadable.data(GalleryRole.FLAGGED) is None
    assert unreadable.data(GalleryRole.STATUS) == "damaged"
    assert unreadable.data(GalleryRole.SCORE_SORT_KEY) == -math.inf
    assert "damaged or truncated" in unreadable.data(Qt.ItemDataRole.ToolTipRole)


def test_counts_and_rejected_paths(model: GalleryModel) -> None:
    assert model.counts() == GalleryCounts(total=5, flagged=2, kept=2, rejected=3, not_scored=1)
    # The unreadable file is rejected too, as the engine decides.
    assert model.rejected_paths() == ["A.png", "d.png", "sub/c.png"]
    assert model.rejection_reasons() == RejectionReasons(flagged=2, not_scored=1, curator=0)


def test_threshold_change_reflags_rows(qtbot: QtBot, model: GalleryModel) -> None:
    with qtbot.waitSignal(model.dataChanged, timeout=1000) as changed:
        model.set_threshold(0.001)
    assert GalleryRole.FLAGGED in changed.args[2]
    assert model.counts() == GalleryCounts(total=5, flagged=4, kept=0, rejected=5, not_scored=1)
    assert model.index(0).data(GalleryRole.FLAGGED) is True


def test_threshold_without_flag_change_is_silent(qtbot: QtBot, model: GalleryModel) -> None:
    with qtbot.assertNotEmitted(model.dataChanged):
        model.set_threshold(0.015)


def test_remove_paths_removes_rows(model: GalleryModel) -> None:
    removed = model.remove_paths(["A.png", "sub/c.png", "e.png", "not-in-model.png"])
    assert [item.record.relative_path for item in removed] == ["A.png", "e.png", "sub/c.png"]
    assert model_paths(model) == ["d.png", "b.png"]
    assert model.counts() == GalleryCounts(total=2, flagged=1, kept=1, rejected=1)
    assert model.row_of("d.png") == 0
    assert model.row_of("A.png") is None


def test_clear_removes_everything(model: GalleryModel) -> None:
    model.clear()
    assert model.rowCount() == 0
    assert model.counts() == GalleryCounts()


def test_scores_follow_insertions_removals_and_clear(model: GalleryModel) -> None:
    assert sorted(model.scores()) == [0.002, THRESHOLD, 0.02, 0.5]
    model.insert_items([make_item("f.png", 0.3), make_item("g.png", None, Status.EMPTY)])
    assert sorted(model.scores()) == [0.002, THRESHOLD, 0.02, 0.3, 0.5]
    model.remove_paths(["A.png", "g.png"])
    assert sorted(model.scores()) == [0.002, THRESHOLD, 0.02, 0.3]
    model.insert_items([make_item("h.png", 0.7)])
    assert sorted(model.scores()) == [0.002, THRESHOLD, 0.02, 0.3, 0.7]
    model.clear()
    assert model.scores() == []


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
    model.insert_items([make_item("f.png", 0.9), make_item("g.png", 0.0)])
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
        (FilterMode.NOT_SCORED, {"sub/c.png"}),
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


def test_threshold_change_signals_changed_rows(qtbot: QtBot, model: GalleryModel) -> None:
    ranges: list[tuple[int, int]] = []
    model.dataChanged.connect(lambda first, last, _roles: ranges.append((first.row(), last.row())))
    model.set_threshold(0.001)
    # Only e.png (row 2) and b.png (row 3) cross the new threshold, and rows in
    # score order make them one run.
    assert ranges == [(2, 3)]


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
    row = model.row_of("A.png") or 0
    scored = model.index(row)
    assert scored.data(GalleryRole.FLAGGED) is True
    assert scored.data(GalleryRole.OVERRIDE) == "keep"
    assert scored.data(GalleryRole.DECISION) == "keep"
    assert model.tile(row).override is Decision.KEEP
    assert "Keep (your decision)" in scored.data(Qt.ItemDataRole.ToolTipRole)
    assert model.counts() == GalleryCounts(total=5, flagged=2, kept=3, rejected=2,
                                           not_scored=1, overridden=1)


def test_override_survives_threshold_changes(model: GalleryModel) -> None:
    model.set_override(["A.png"], Decision.KEEP)
    model.set_override(["b.png"], Decision.REJECT)
    a_row, b_row = model.row_of("A.png") or 0, model.row_of("b.png") or 0
    for threshold in (0.0, 0.001, 0.1, 1.0):
        model.set_threshold(threshold)
        assert model.decision_at(a_row) is Decision.KEEP, threshold
        assert model.decision_at(b_row) is Decision.REJECT, threshold
    assert model.flag_at(a_row) is False  # at 1.0 the model keeps A.png by itself
    assert model.rejection_reasons() == RejectionReasons(flagged=0, not_scored=1, curator=1)


def test_clear_override_restores_model_decision(model: GalleryModel) -> None:
    model.set_override(["A.png", "b.png"], Decision.KEEP)
    assert model.set_override(["A.png"], None) == 1
    row = model.row_of("A.png") or 0
    assert model.decision_at(row) is Decision.REJECT
    assert model.override_at(row) is None
    assert model.overrides() == {"b.png": Decision.KEEP}


def test_override_of_unlisted_file_waits(model: GalleryModel) -> None:
    assert model.set_override(["later.png"], Decision.REJECT) == 0
    model.insert_items([make_item("later.png", 0.0001)])
    row = model.row_of("later.png")
    assert row == 4
    assert model.override_at(row) is Decision.REJECT
    assert model.decision_at(row) is Decision.REJECT


def test_overrides_survive_clear_and_rescan(model: GalleryModel) -> None:
    model.set_override(["d.png"], Decision.KEEP)
    model.clear()
    model.insert_items(ITEMS)
    assert model.decision_at(model.row_of("d.png")) is Decision.KEEP


def test_set_overrides_replaces_all(model: GalleryModel) -> None:
    model.set_override(["A.png"], Decision.KEEP)
    model.set_overrides({"sub/c.png": Decision.KEEP})
    assert model.override_at(model.row_of("A.png") or 0) is None
    # A curator may keep a file the model could not read.
    assert model.decision_at(model.row_of("sub/c.png") or 0) is Decision.KEEP
    assert model.counts() == GalleryCounts(total=5, flagged=2, kept=3, rejected=2,
                                           not_scored=1, overridden=1)


def test_proxy_filter_follows_overrides(model: GalleryModel, proxy: GalleryProxyModel) -> None:
    proxy.set_filter_mode(FilterMode.KEPT)
    model.set_override(["b.png"], Decision.REJECT)
    assert proxy_paths(proxy) == ["e.png"]
    proxy.set_filter_mode(FilterMode.OVERRIDDEN)
    assert proxy_paths(proxy) == ["b.png"]
    model.set_override(["b.png"], None)
    assert proxy_paths(proxy) == []
