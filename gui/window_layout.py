"""The widgets of the main window and where they sit: gallery, docks, toolbar, status bar."""

from __future__ import annotations

import logging

from PySide6.QtCore import QItemSelection, QModelIndex, QObject, Qt, QThreadPool, Slot
from PySide6.QtWidgets import (
    QComboBox,
    QDockWidget,
    QLabel,
    QMainWindow,
    QScrollArea,
    QSizePolicy,
    QSlider,
    QToolBar,
    QWidget,
)

from engine.modelfile import ReferenceModel
from gui.actions import WindowActions
from gui.detail_pane import DetailPane
from gui.gallery_model import GalleryModel
from gui.gallery_proxy import FilterMode, GalleryProxyModel, SortKey
from gui.gallery_view import MAX_THUMBNAIL_SIDE, MIN_THUMBNAIL_SIDE, GalleryView
from gui.settings import WindowSettings
from gui.status_bar import MainStatusBar
from gui.threshold_panel import ThresholdPanel
from gui.tile_delegate import THUMBNAIL_SIDE

logger = logging.getLogger(__name__)

THUMBNAIL_STEP = 16
DETAIL_WIDTH = 400

NO_FOLDER_TEXT = "Open a folder of images to score it: File › Open Folder… (Ctrl+O), " \
                 "File › Open Recent, or drop a folder here."


class WindowLayout(QObject):
    """Builds the main window's widgets and enables its actions from the window's state.

    The gallery is the central widget. The threshold panel is a dock above it and
    the detail pane a dock on the right, both movable and restored from QSettings.
    """

    no_folder_text = NO_FOLDER_TEXT

    def __init__(self, window: QMainWindow, gallery_model: GalleryModel, pool: QThreadPool,
                 settings: WindowSettings) -> None:
        super().__init__(window)
        self._window = window
        self._gallery_model = gallery_model
        self._settings = settings
        self._build_gallery(window)
        self._build_docks(window, pool)
        self._build_toolbar(window)
        self.status_bar = MainStatusBar(window)
        window.setStatusBar(self.status_bar)
        self._connect_signals()

    def _connect_signals(self) -> None:
        self.filter_combo.currentTextChanged.connect(self._on_filter_combo_changed)
        self.sort_combo.currentTextChanged.connect(self._on_sort_combo_changed)
        self.size_slider.valueChanged.connect(self._on_size_slider_value_changed)
        selection = self.gallery_view.selectionModel()
        selection.currentChanged.connect(self._on_gallery_current_changed)
        selection.selectionChanged.connect(self._on_gallery_selection_changed)

    def _build_gallery(self, window: QMainWindow) -> None:
        self.proxy_model = GalleryProxyModel(window)
        self.proxy_model.setSourceModel(self._gallery_model)
        self.gallery_view = GalleryView(window)
        self.gallery_view.setModel(self.proxy_model)
        window.setCentralWidget(self.gallery_view)

    def _build_docks(self, window: QMainWindow, pool: QThreadPool) -> None:
        self.threshold_panel = ThresholdPanel(self._gallery_model, window)
        self.threshold_dock = QDockWidget("Threshold", window)
        self.threshold_dock.setObjectName("threshold_dock")
        self.threshold_dock.setWidget(self.threshold_panel)
        self.threshold_dock.setAllowedAreas(Qt.DockWidgetArea.TopDockWidgetArea
                                            | Qt.DockWidgetArea.BottomDockWidgetArea)
        self.threshold_panel.setMinimumHeight(150)

        self.detail_pane = DetailPane(self._gallery_model, pool, window)
        scroll = QScrollArea(window)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setWidget(self.detail_pane)
        self.detail_dock = QDockWidget("Details", window)
        self.detail_dock.setObjectName("detail_dock")
        self.detail_dock.setWidget(scroll)
        self.detail_dock.setAllowedAreas(Qt.DockWidgetArea.LeftDockWidgetArea
                                         | Qt.DockWidgetArea.RightDockWidgetArea)

        # The detail pane takes the full height of the window's right side.
        window.setCorner(Qt.Corner.TopRightCorner, Qt.DockWidgetArea.RightDockWidgetArea)
        window.setCorner(Qt.Corner.BottomRightCorner, Qt.DockWidgetArea.RightDockWidgetArea)
        window.addDockWidget(Qt.DockWidgetArea.TopDockWidgetArea, self.threshold_dock)
        window.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.detail_dock)
        window.resizeDocks([self.detail_dock], [DETAIL_WIDTH], Qt.Orientation.Horizontal)

    def _build_toolbar(self, window: QMainWindow) -> None:
        self.toolbar = QToolBar("Main", window)
        self.toolbar.setObjectName("main_toolbar")
        self.toolbar.setMovable(False)
        self.toolbar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        self.filter_combo = QComboBox(window)
        self.filter_combo.addItems([mode.value for mode in FilterMode])
        self.filter_combo.setToolTip("Which images the gallery shows")
        self.sort_combo = QComboBox(window)
        self.sort_combo.addItems([key.value for key in SortKey])
        self.sort_combo.setToolTip("Score: highest combined score first. Name: by path")
        self.size_slider = QSlider(Qt.Orientation.Horizontal, window)
        self.size_slider.setRange(MIN_THUMBNAIL_SIDE, MAX_THUMBNAIL_SIDE)
        self.size_slider.setSingleStep(THUMBNAIL_STEP)
        self.size_slider.setPageStep(THUMBNAIL_STEP)
        self.size_slider.setValue(THUMBNAIL_SIDE)
        self.size_slider.setMaximumWidth(110)
        self.size_slider.setToolTip("Thumbnail size")
        self.size_slider.setAccessibleName("Thumbnail size")
        window.addToolBar(self.toolbar)

    def add_actions(self, actions: WindowActions) -> None:
        """Put `actions` into the menu bar, the toolbar and the detail pane."""
        toggles = [self.threshold_dock.toggleViewAction(), self.detail_dock.toggleViewAction()]
        actions.build_menus(self._window.menuBar(), toggles)
        actions.build_toolbar(self.toolbar)
        for caption, widget in (("Show ", self.filter_combo), ("  Sort ", self.sort_combo)):
            label = QLabel(caption, self._window)
            label.setBuddy(widget)
            self.toolbar.addWidget(label)
            self.toolbar.addWidget(widget)
        spacer = QWidget(self._window)
        spacer.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        self.toolbar.addWidget(spacer)
        self.toolbar.addWidget(QLabel("Size ", self._window))
        self.toolbar.addWidget(self.size_slider)
        self.detail_pane.set_decision_actions([actions.keep, actions.reject,
                                               actions.clear_decision])
        actions.larger_thumbnails.triggered.connect(self.enlarge_thumbnails)
        actions.smaller_thumbnails.triggered.connect(self.shrink_thumbnails)
        actions.reset_threshold.triggered.connect(self.threshold_panel.reset_to_calibrated)

    def set_model(self, model: ReferenceModel | None) -> None:
        """Show `model` in the status bar, the threshold panel and the detail pane."""
        self.status_bar.set_model(model)
        self.threshold_panel.set_reference_model(model)
        self.detail_pane.set_reference_model(model)
        title = "Threshold" if model is None else f"Threshold of model {model.name}"
        self.threshold_dock.setWindowTitle(title)

    def update_actions(self, actions: WindowActions, *, has_model: bool, has_folder: bool,
                       scanning: bool, file_job: bool, can_undo: bool) -> None:
        """Enable each action that makes sense in the window's current state."""
        counts = self._gallery_model.counts()
        idle = not scanning and not file_job
        actions.open_folder.setEnabled(has_model and not file_job)
        actions.reload_folder.setEnabled(has_model and has_folder and not file_job)
        actions.open_model.setEnabled(not file_job)
        actions.use_bundled_model.setEnabled(not file_job)
        actions.move_rejects.setEnabled(has_folder and idle and counts.rejected > 0)
        actions.export.setEnabled(has_folder and idle and counts.total > 0)
        actions.undo.setEnabled(has_folder and idle and can_undo)
        has_rows = counts.total > 0 and not file_job
        for action in (actions.keep, actions.reject, actions.clear_decision,
                       actions.next_image, actions.previous_image, actions.select_all):
            action.setEnabled(has_rows)
        actions.reset_threshold.setEnabled(has_model
                                           and self.threshold_panel.reset_button.isEnabled())

    def restore(self) -> None:
        """Restore the window's geometry, docks and thumbnail size from the settings."""
        geometry = self._settings.geometry()
        if geometry is not None:
            self._window.restoreGeometry(geometry)
        state = self._settings.window_state()
        if state is not None:
            self._window.restoreState(state)
        side = self._settings.thumbnail_side()
        steps = round((side - MIN_THUMBNAIL_SIDE) / THUMBNAIL_STEP)
        self.size_slider.setValue(MIN_THUMBNAIL_SIDE + steps * THUMBNAIL_STEP)

    def save(self) -> None:
        """Store the window's geometry and the arrangement of its docks."""
        self._settings.save_layout(self._window.saveGeometry(), self._window.saveState())

    @Slot(str)
    def _on_filter_combo_changed(self, text: str) -> None:
        self.proxy_model.set_filter_mode(FilterMode(text))

    @Slot(str)
    def _on_sort_combo_changed(self, text: str) -> None:
        self.proxy_model.set_sort_key(SortKey(text))

    @Slot(int)
    def _on_size_slider_value_changed(self, side: int) -> None:
        self.gallery_view.set_thumbnail_side(side)
        self._settings.set_thumbnail_side(side)

    @Slot(QModelIndex, QModelIndex)
    def _on_gallery_current_changed(self, current: QModelIndex, _previous: QModelIndex) -> None:
        self.detail_pane.show_index(current)

    @Slot(QItemSelection, QItemSelection)
    def _on_gallery_selection_changed(self, _selected: QItemSelection,
                                      _deselected: QItemSelection) -> None:
        rows = {index.row() for index in self.gallery_view.selectionModel().selectedIndexes()}
        self.detail_pane.set_selection_count(len(rows))

    @Slot()
    def enlarge_thumbnails(self) -> None:
        self.size_slider.setValue(self.size_slider.value() + THUMBNAIL_STEP)

    @Slot()
    def shrink_thumbnails(self) -> None:
        self.size_slider.setValue(self.size_slider.value() - THUMBNAIL_STEP)
