"""Detail pane: the current image, the model's view of it, its score and its file facts."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, Qt, QThreadPool, Signal, Slot
from PySide6.QtGui import QAction, QFont
from PySide6.QtWidgets import (
    QFormLayout,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from engine.images import Status
from engine.modelfile import ReferenceModel
from engine.scoring import ScoredFile
from engine.signals import SIGNALS, flagging_signals
from engine.thumbnails import CachedThumbnail
from gui.detail_loader import DetailImages, DetailLoader
from gui.dialogs import WrappedText
from gui.error_map import ErrorMapLegend, colourise, full_scale, rgb_image
from gui.gallery_items import (
    Tile,
    describe_decision,
    describe_status,
    placeholder_text,
    sentence_case,
)
from gui.gallery_model import GalleryModel
from gui.gallery_roles import GalleryRole
from gui.image_box import ImageBox
from gui.score_format import format_score, format_threshold
from gui.thumbnails import thumbnail_pixmap

logger = logging.getLogger(__name__)

_NO_IMAGE_TEXT = "Select an image in the gallery to see how the model reconstructs it."
_INFO_FIELDS = ("Score", "Signals", "Clean data", "Model", "Decision", "Size", "Dimensions",
                "Format", "Modified", "Path")
# Fields whose text can hold a file name, or a reason for a file's status taken
# from an error message, with no space to break a line at.
_NAME_FIELDS = ("Model", "Path")


def format_size(size: int | None) -> str:
    """Return a file size as "12.3 KB (12,589 bytes)", or "unknown" for None."""
    if size is None:
        return "unknown"
    value, unit = float(size), "bytes"
    for next_unit in ("KB", "MB", "GB"):
        if value < 1000:
            break
        value, unit = value / 1000, next_unit
    if unit == "bytes":
        return f"{size:,} bytes"
    return f"{value:.1f} {unit} ({size:,} bytes)"


class DetailPane(QWidget):
    """Original, model input, reconstruction and error map of the gallery's current image.

    The error map uses one colour scale for every image of a model (see
    gui.error_map), shown in a legend. Below are the score, its percentile among
    the clean calibration scores, the model's flag, the final decision and file facts.
    The title and the fields that can hold a file name wrap inside a long name,
    so the pane keeps its width for any name.

    Signals:
        images_shown(str): the decoded images of this file (the absolute path)
            are on screen, or the reason they could not be decoded.
    """

    images_shown = Signal(str)

    def __init__(self, gallery_model: GalleryModel, pool: QThreadPool,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._gallery_model = gallery_model
        self._model: ReferenceModel | None = None
        self._index = QPersistentModelIndex()
        self._path: Path | None = None
        self._record: ScoredFile | None = None
        self._images_path: Path | None = None
        self._file_size: int | None = None
        self._modified_ns: int | None = None
        self._loader = DetailLoader(pool, self)
        self._build_ui()
        self._connect_signals()
        self.show_index(QModelIndex())

    def _build_ui(self) -> None:
        self.title_label = WrappedText("", self)
        title_font = QFont(self.font())
        title_font.setBold(True)
        title_font.setPointSizeF(title_font.pointSizeF() * 1.15)
        self.title_label.setFont(title_font)
        self.selection_label = QLabel(self)
        self.original_box = ImageBox(200, "Original image", self)
        self.legend = ErrorMapLegend(self)
        self._buttons = QHBoxLayout()
        self._buttons.setSpacing(4)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 8, 8, 8)
        layout.addWidget(self.title_label)
        layout.addWidget(self.selection_label)
        layout.addWidget(self.original_box, 3)
        layout.addLayout(self._build_model_view(), 1)
        layout.addWidget(self.legend)
        layout.addLayout(self._buttons)
        layout.addLayout(self._build_info())
        layout.addStretch(0)

    def _build_model_view(self) -> QGridLayout:
        """Build the row of model input, reconstruction and error map with their captions."""
        self.input_box = ImageBox(96, "Model input", self)
        self.reconstruction_box = ImageBox(96, "Reconstruction", self)
        self.error_box = ImageBox(96, "Error map", self)
        grid = QGridLayout()
        grid.setSpacing(6)
        boxes = (self.input_box, self.reconstruction_box, self.error_box)
        for column, box in enumerate(boxes):
            grid.addWidget(box, 0, column)
            label = QLabel(box.accessibleName(), self)
            label.setAlignment(Qt.AlignmentFlag.AlignHCenter)
            grid.addWidget(label, 1, column)
        return grid

    def _build_info(self) -> QFormLayout:
        """Build the form of score and file facts, one selectable label per field."""
        self.info_labels: dict[str, QLabel | WrappedText] = {}
        form = QFormLayout()
        form.setLabelAlignment(Qt.AlignmentFlag.AlignRight)
        form.setVerticalSpacing(3)
        for field in _INFO_FIELDS:
            value: QLabel | WrappedText
            if field in _NAME_FIELDS:
                value = WrappedText("", self)
            else:
                value = QLabel(self)
                value.setWordWrap(True)
                value.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            self.info_labels[field] = value
            form.addRow(f"{field}:", value)
        return form

    def _connect_signals(self) -> None:
        self._loader.loaded.connect(self._on_loader_loaded)
        self._gallery_model.dataChanged.connect(self._on_gallery_data_changed)
        self._gallery_model.threshold_changed.connect(self._on_gallery_threshold_changed)

    # Public interface

    @property
    def shown_path(self) -> Path | None:
        """Absolute path of the file shown, or None."""
        return self._path

    @property
    def is_loading(self) -> bool:
        """True while the decoded images of the shown file are still being prepared."""
        return self._model is not None and self._path is not None \
            and self._images_path != self._path

    @property
    def error_map_scale(self) -> float:
        """Squared error shown in the top colour of the error map, fixed per model."""
        return self.legend.full_scale

    def info_text(self, field: str) -> str:
        """Return the text shown for one of the file facts, such as "Size" or "Path"."""
        label = self.info_labels[field]
        return label.toPlainText() if isinstance(label, WrappedText) else label.text()

    def set_reference_model(self, model: ReferenceModel | None) -> None:
        """Show the current image again as `model` reconstructs it."""
        if model is not self._model:
            # Forgetting the shown file makes show_index() request the new model's images.
            self._path = None
        self._model = model
        self.legend.set_model(model)
        self.show_index(self._index)

    def set_decision_actions(self, actions: Sequence[QAction]) -> None:
        """Add a button for each action, such as Keep, Reject and Clear Decision."""
        for action in actions:
            button = QToolButton(self)
            button.setDefaultAction(action)
            button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
            self._buttons.addWidget(button)
        self._buttons.addStretch(1)

    def set_selection_count(self, count: int) -> None:
        """Say how many images a decision applies to when more than one is selected."""
        self.selection_label.setText(
            f"{count} images selected: a decision applies to all of them." if count > 1 else ""
        )
        self.selection_label.setVisible(count > 1)

    def show_index(self, index: QModelIndex | QPersistentModelIndex) -> None:
        """Show the gallery row at `index` (of any model over the GalleryModel), or nothing."""
        self._index = QPersistentModelIndex(index)
        tile: Tile | None = index.data(GalleryRole.TILE) if index.isValid() else None
        if tile is None:
            self._show_nothing()
            return
        path = tile.item.record.path
        if path != self._path:
            self._path = path
            self._record = tile.item.record
            self._images_path = None
            self._file_size = self._modified_ns = None
            self._show_thumbnail(tile)
            if self._model is not None:
                self._loader.request(self._model, tile.item.record)
        self._show_info(tile)

    # Showing

    def _show_nothing(self) -> None:
        self._path = None
        self._loader.cancel()
        self.title_label.set_text("No image selected")
        self.original_box.set_text(_NO_IMAGE_TEXT)
        for box in (self.input_box, self.reconstruction_box, self.error_box):
            box.set_text("")
        for field in self.info_labels:
            self._set_info(field, "")

    def _show_thumbnail(self, tile: Tile) -> None:
        item = tile.item
        self.title_label.set_text(item.record.path.name)
        if item.thumbnail:
            ratio = self.devicePixelRatioF()
            self.original_box.set_pixmap(thumbnail_pixmap(item.thumbnail_key, item.thumbnail,
                                                          ratio))
        else:
            self.original_box.set_text(placeholder_text(item, detailed=True))
        text = "Loading…" if item.record.score is not None else "Not scored"
        for box in (self.input_box, self.reconstruction_box, self.error_box):
            box.set_text(text)

    def _show_info(self, tile: Tile) -> None:
        record = tile.item.record
        threshold = self._gallery_model.threshold
        fields = self.info_labels
        if record.score is None:
            fields["Score"].setText("none")
            fields["Signals"].setText("")
            fields["Clean data"].setText("")
            self._set_info("Model", f"Not scored: {describe_status(record)}")
        else:
            # A threshold of 0, at the end of the slider, has no multiples.
            ratio = f" ({record.score / threshold:.2f} × threshold)" if threshold > 0 else ""
            fields["Score"].setText(f"{format_score(record.score)}{ratio}")
            fields["Signals"].setText(self._describe_signals(record.signals, threshold))
            fields["Clean data"].setText(self._describe_percentile(record.score))
            self._set_info("Model", self._describe_verdict(record.signals, threshold,
                                                           bool(tile.flagged)))
        fields["Decision"].setText(describe_decision(tile.decision, tile.override))
        fields["Size"].setText(format_size(self._file_size))
        dimensions = f"{record.width} × {record.height} px" if record.width else "unknown"
        fields["Dimensions"].setText(dimensions)
        fields["Format"].setText(record.format or "unknown")
        modified = ("unknown" if self._modified_ns is None else
                    datetime.fromtimestamp(self._modified_ns / 1e9).strftime("%Y-%m-%d %H:%M"))
        fields["Modified"].setText(modified)
        self._set_info("Path", str(record.path))

    def _set_info(self, field: str, text: str) -> None:
        label = self.info_labels[field]
        if isinstance(label, WrappedText):
            label.set_text(text)
        else:
            label.setText(text)

    def _describe_signals(self, signals: dict[str, float] | None, threshold: float) -> str:
        """Return each signal with its value as a multiple of its own threshold.

        A signal whose threshold is 0, as every one is at a combined threshold of 0,
        is shown with its value alone, since it has no multiple.
        """
        if self._model is None or not signals:
            return "not recorded"
        thresholds = self._model.signal_thresholds
        lines = []
        for name in SIGNALS:
            if name not in signals:
                continue
            line = f"{name} {format_score(signals[name])}"
            signal_threshold = threshold * thresholds.get(name, 0)
            if signal_threshold > 0:
                line += f" ({signals[name] / signal_threshold:.2f} × its threshold)"
            lines.append(line)
        return "<br>".join(lines)

    def _describe_verdict(self, signals: dict[str, float] | None, threshold: float,
                          flagged: bool) -> str:
        if not flagged:
            return f"Passed: at or below the threshold {format_threshold(threshold)}"
        names = []
        if self._model is not None and signals:
            names = flagging_signals(signals, self._model.signal_thresholds, threshold)
        by = f", flagged by {' and '.join(names)}" if names else ""
        return f"Flagged: above the threshold {format_threshold(threshold)}{by}"

    def _describe_percentile(self, score: float) -> str:
        if self._model is None:
            return ""
        percentile = self._model.calibration.percentile(score)
        return f"{percentile:.1f} % of clean calibration images score lower"

    def _show_images(self, images: DetailImages) -> None:
        if images.problem:
            self.original_box.set_text(sentence_case(images.problem))
            for box in (self.input_box, self.reconstruction_box, self.error_box):
                box.set_text("")
            return
        if images.model_input is None or images.error_map is None:
            reason = images.detail or images.status.value
            # "Now" only for a file that was read when it was scored.
            now = " now" if self._record is not None and self._record.status is Status.OK else ""
            # Once is enough: the three panes sit side by side.
            self.input_box.set_text(f"Cannot read the file{now}: {reason}")
            self.reconstruction_box.set_text("")
            self.error_box.set_text("")
            return
        assert images.original is not None and images.reconstruction is not None
        assert self._model is not None
        self.original_box.set_image(rgb_image(images.original), smooth=True)
        self.input_box.set_image(rgb_image(images.model_input), smooth=False)
        self.reconstruction_box.set_image(rgb_image(images.reconstruction), smooth=False)
        colours = colourise(images.error_map, full_scale(self._model))
        self.error_box.set_image(rgb_image(colours), smooth=False)

    # Slots

    @Slot(object)
    def _on_loader_loaded(self, images: DetailImages) -> None:
        if images.path != self._path:
            return
        self._file_size, self._modified_ns = images.file_size, images.modified_ns
        if images.problem and self._record is not None:
            # The other facts describe the scored version, so Size and Modified do too.
            self._file_size, self._modified_ns = self._record.size, self._record.mtime_ns
            # The tile drops its thumbnail of the scored version and shows the problem.
            self._gallery_model.set_thumbnails(
                [CachedThumbnail(self._record, None, images.problem)])
        self._images_path = images.path
        self._show_images(images)
        if self._index.isValid():
            self._show_info(self._index.data(GalleryRole.TILE))
        self.images_shown.emit(str(images.path))

    @Slot(QModelIndex, QModelIndex, list)
    def _on_gallery_data_changed(self, first: QModelIndex, last: QModelIndex,
                                 _roles: list[int]) -> None:
        if self._index.isValid() and self._path is not None:
            row = self._gallery_model.row_of(self._relative_path())
            if row is not None and first.row() <= row <= last.row():
                self._show_info(self._index.data(GalleryRole.TILE))

    @Slot(float)
    def _on_gallery_threshold_changed(self, _threshold: float) -> None:
        if self._index.isValid():
            self._show_info(self._index.data(GalleryRole.TILE))

    def _relative_path(self) -> str:
        return str(self._index.data(GalleryRole.RELATIVE_PATH))
