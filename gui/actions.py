"""The window's actions with their shortcuts, and the menus and toolbar built from them."""

from __future__ import annotations

import logging
from collections.abc import Callable

from PySide6.QtCore import QObject, Qt, Signal, SignalInstance, Slot
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QMenu, QMenuBar, QToolBar, QToolButton, QWidget

logger = logging.getLogger(__name__)

# Keys the gallery handles by itself, listed in the shortcut overview next to the actions.
GALLERY_KEYS = (
    ("↑  ↓", "Move to the row above or below"),
    ("Shift+arrow keys", "Extend the selection"),
    ("Ctrl+click, Shift+click", "Add to the selection, select a range"),
    ("Home, End", "Go to the first or last image"),
)


def _action(parent: QObject, text: str, tip: str,
            shortcut: str | QKeySequence | QKeySequence.StandardKey = "") -> QAction:
    action = QAction(text, parent)
    action.setStatusTip(tip)
    if shortcut:
        action.setShortcut(QKeySequence(shortcut))
        keys = action.shortcut().toString(QKeySequence.SequenceFormat.NativeText)
        action.setToolTip(f"{tip} ({keys})")
    else:
        action.setToolTip(tip)
    return action


class WindowActions(QObject):
    """Every command of the main window as a QAction, shared by menus, toolbar and buttons.

    The navigation and selection actions work by key only while the gallery has
    the focus, so arrow keys still move the threshold slider when it has the focus.
    The decision keys P, X and U work anywhere in the window except in text fields.

    Signals:
        recent_folder_requested(str): a folder was chosen in File › Open Recent.
        clear_recent_requested(): File › Open Recent › Clear Menu was chosen.
        recent_model_requested(str): a model file was chosen in Model › Open Recent Model.
        clear_recent_models_requested(): Model › Open Recent Model › Clear Menu was chosen.
    """

    recent_folder_requested = Signal(str)
    clear_recent_requested = Signal()
    recent_model_requested = Signal(str)
    clear_recent_models_requested = Signal()

    def __init__(self, window: QWidget, gallery: QWidget) -> None:
        super().__init__(window)
        self._build_file_actions(window)
        self._build_review_actions(window)
        self._build_view_actions(window)
        self._build_model_actions(window)
        self.recent_menu = QMenu("Open &Recent", window)
        self.recent_models_menu = QMenu("Open &Recent Model", window)
        self.model_menu = QMenu("&Model", window)
        for action in (self.next_image, self.previous_image, self.select_all):
            action.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
            gallery.addAction(action)

    def _build_file_actions(self, window: QWidget) -> None:
        self.open_folder = _action(window, "&Open Folder…", "Choose a folder and score every "
                                   "image in it", QKeySequence.StandardKey.Open)
        self.open_folder.setIconText("Open Folder")
        self.reload_folder = _action(window, "Re&load Folder", "List the open folder again, "
                                     "for files added, changed or removed by other programs, "
                                     "and score what changed", QKeySequence.StandardKey.Refresh)
        self.move_rejects = _action(window, "&Move Rejects Out…", "Move every image whose final "
                                    "decision is reject to the quarantine folder", "Ctrl+M")
        self.move_rejects.setIconText("Move Rejects Out")
        self.export = _action(window, "&Export Cleaned Set…", "Copy or hard-link the kept "
                              "images to a folder, with a manifest of every decision", "Ctrl+E")
        self.export.setIconText("Export Cleaned Set")
        self.quit = _action(window, "&Quit", "Close Retina Curator", QKeySequence.StandardKey.Quit)
        self.quit.setMenuRole(QAction.MenuRole.QuitRole)
        self.undo = _action(window, "&Undo Move", "Move the files of the last move batch back "
                            "to where they were", QKeySequence.StandardKey.Undo)
        self.undo.setIconText("Undo")
        self.select_all = _action(window, "Select &All", "Select every image in the gallery",
                                  QKeySequence.StandardKey.SelectAll)

    def _build_review_actions(self, window: QWidget) -> None:
        self.keep = _action(window, "&Keep", "Keep the selected images, whatever the model "
                            "says", "P")
        self.reject = _action(window, "Re&ject", "Reject the selected images, whatever the "
                              "model says", "X")
        self.clear_decision = _action(window, "&Clear Decision", "Let the model decide the "
                                      "selected images again", "U")
        self.clear_decision.setIconText("Clear")
        self.next_image = _action(window, "&Next Image", "Go to the next image", "Right")
        self.next_image.setIconText("Next ▶")
        self.previous_image = _action(window, "&Previous Image", "Go to the previous image",
                                      "Left")
        self.previous_image.setIconText("◀ Previous")
        self.advance = _action(window, "&Advance After Decision", "Go to the next image after "
                               "keeping, rejecting or clearing")
        self.advance.setCheckable(True)
        self.advance.setChecked(True)
        self.reset_threshold = _action(window, "&Reset Threshold to Calibrated", "Go back to "
                                       "the threshold stored with the model", "Ctrl+R")
        self.shortcuts = _action(window, "&Keyboard Shortcuts…", "List every key of the "
                                 "review", "?")
        self.shortcuts.setShortcuts([QKeySequence("?"), QKeySequence("F1")])

    def _build_view_actions(self, window: QWidget) -> None:
        self.larger_thumbnails = _action(window, "&Larger Thumbnails", "Show larger tiles in "
                                         "the gallery", QKeySequence.StandardKey.ZoomIn)
        self.smaller_thumbnails = _action(window, "&Smaller Thumbnails", "Show smaller tiles in "
                                          "the gallery", QKeySequence.StandardKey.ZoomOut)

    def _build_model_actions(self, window: QWidget) -> None:
        self.open_model = _action(window, "&Open Model…", "Choose a model file to score "
                                  "with; the open folder is scored again",
                                  "Ctrl+Shift+O")
        self.use_bundled_model = _action(window, "Use &Bundled Model", "Score with the "
                                         "model that ships with Retina Curator")
        self.train_model = _action(window, "&Train Reference Model…", "Train a model on a "
                                   "folder of good images and score with it")
        self.about_model = _action(window, "&About This Model…", "Show what the model was "
                                   "trained on, its threshold, fingerprint and file")

    # Menus and toolbar

    def build_menus(self, menu_bar: QMenuBar, panel_toggles: list[QAction]) -> None:
        """Fill `menu_bar` with the File, Edit, Review, Model and View menus."""
        file_menu = menu_bar.addMenu("&File")
        file_menu.addAction(self.open_folder)
        file_menu.addMenu(self.recent_menu)
        file_menu.addAction(self.reload_folder)
        file_menu.addSeparator()
        file_menu.addAction(self.move_rejects)
        file_menu.addAction(self.export)
        file_menu.addSeparator()
        file_menu.addAction(self.quit)

        edit_menu = menu_bar.addMenu("&Edit")
        edit_menu.addAction(self.undo)
        edit_menu.addSeparator()
        edit_menu.addAction(self.select_all)

        review_menu = menu_bar.addMenu("&Review")
        for action in self.review_actions():
            review_menu.addAction(action)
        review_menu.insertSeparator(self.next_image)
        review_menu.insertSeparator(self.advance)
        review_menu.insertSeparator(self.reset_threshold)
        review_menu.insertSeparator(self.shortcuts)

        self.model_menu.addAction(self.open_model)
        self.model_menu.addMenu(self.recent_models_menu)
        self.model_menu.addAction(self.use_bundled_model)
        self.model_menu.addSeparator()
        self.model_menu.addAction(self.train_model)
        self.model_menu.addSeparator()
        self.model_menu.addAction(self.about_model)
        menu_bar.addMenu(self.model_menu)

        view_menu = menu_bar.addMenu("&View")
        view_menu.addAction(self.larger_thumbnails)
        view_menu.addAction(self.smaller_thumbnails)
        view_menu.addSeparator()
        for toggle in panel_toggles:
            view_menu.addAction(toggle)

    def review_actions(self) -> list[QAction]:
        """Return the Review menu's actions in menu order."""
        return [self.keep, self.reject, self.clear_decision, self.next_image,
                self.previous_image, self.advance, self.reset_threshold, self.shortcuts]

    def build_toolbar(self, toolbar: QToolBar) -> None:
        """Add the file, model and review actions to `toolbar`."""
        for action in (self.open_folder, self.move_rejects, self.export, self.undo):
            toolbar.addAction(action)
        toolbar.addSeparator()
        model_button = QToolButton(toolbar)
        model_button.setText("Model")
        model_button.setToolTip("Open, train or describe the model that scores the images")
        model_button.setMenu(self.model_menu)
        model_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        toolbar.addWidget(model_button)
        toolbar.addSeparator()
        for action in (self.keep, self.reject, self.clear_decision, self.previous_image,
                       self.next_image):
            toolbar.addAction(action)
        toolbar.addSeparator()

    def all_actions(self) -> list[QAction]:
        return [self.open_folder, self.reload_folder, self.move_rejects, self.export, self.undo,
                self.select_all,
                *self.review_actions(), self.open_model, self.larger_thumbnails,
                self.smaller_thumbnails, self.quit]

    def shortcut_rows(self) -> list[tuple[str, str]]:
        """Return (keys, what they do) for every action with a shortcut, then the gallery keys."""
        rows = []
        for action in self.all_actions():
            keys = ", ".join(sequence.toString(QKeySequence.SequenceFormat.NativeText)
                             for sequence in action.shortcuts())
            if keys:
                rows.append((keys, action.text().replace("&", "").removesuffix("…")))
        return [*rows, *GALLERY_KEYS]

    # Recent folders and models

    def set_recent_folders(self, folders: list[str]) -> None:
        """Rebuild File › Open Recent from `folders`, newest first."""
        _fill_recent_menu(self.recent_menu, folders, self._on_recent_action_triggered,
                          self.clear_recent_requested)

    def set_recent_models(self, paths: list[str]) -> None:
        """Rebuild Model › Open Recent Model from the model file `paths`, newest first."""
        _fill_recent_menu(self.recent_models_menu, paths, self._on_recent_model_triggered,
                          self.clear_recent_models_requested)

    @Slot()
    def _on_recent_action_triggered(self) -> None:
        action = self.sender()
        if isinstance(action, QAction):
            self.recent_folder_requested.emit(str(action.data()))

    @Slot()
    def _on_recent_model_triggered(self) -> None:
        action = self.sender()
        if isinstance(action, QAction):
            self.recent_model_requested.emit(str(action.data()))


def _fill_recent_menu(menu: QMenu, paths: list[str], on_chosen: Callable[[], None],
                      clear_requested: SignalInstance) -> None:
    """Rebuild `menu` with a numbered entry per path, then Clear Menu emitting `clear_requested`."""
    menu.clear()
    for number, path in enumerate(paths, start=1):
        action = menu.addAction(f"&{number} {path}")
        action.setData(path)
        action.setStatusTip(path)
        action.setToolTip(path)
        action.triggered.connect(on_chosen)
    if paths:
        menu.addSeparator()
    clear = menu.addAction("&Clear Menu")
    clear.setEnabled(bool(paths))
    clear.triggered.connect(clear_requested)
    menu.setEnabled(bool(paths))
