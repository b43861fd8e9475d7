"""Steps shared by the commands on a reviewed folder: exit codes, opening the
folder's review, and scoring it through the cache with a progress bar.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

from tqdm import tqdm

from engine.invocation import program_name
from engine.journal import StopKind, StoppedBatch, mark_stop_reported
from engine.listing import (
    IMAGE_SUFFIXES,
    FolderListing,
    SkippedFolder,
    describe_skipped_folders,
    list_folder,
)
from engine.modelfile import ReferenceModel
from engine.plurals import by_count, counted
from engine.review import ReviewStore
from engine.reviewdb import ReviewStoreError
from engine.scorecache import score_changed

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_BAD_MODEL = 2
# Invalid arguments share the code that argparse exits with.
EXIT_USAGE = 2
# The shell's code for a process stopped by Ctrl+C (128 + SIGINT).
EXIT_INTERRUPTED = 130


def check_folder(folder: Path, action: str) -> bool:
    """Return True if `folder` is an existing folder, else print why not and return False."""
    if not folder.exists():
        print(f"{action} failed: {folder} not found. Pass an existing folder.", file=sys.stderr)
        return False
    if not folder.is_dir():
        print(f"{action} failed: {folder} is not a folder. Pass a folder.", file=sys.stderr)
        return False
    return True


def open_review(folder: Path, action: str) -> ReviewStore | None:
    """Open the review of `folder`, printing recovery messages, the notice of a review
    split between two databases, and the moves or undos that stopped before they
    reached every file, or print why it failed.

    Each stop is printed once: it is then recorded as reported, also for the window.
    """
    if not check_folder(folder, action):
        return None
    try:
        store = ReviewStore.open(folder)
    except ReviewStoreError as error:
        print(error, file=sys.stderr)
        return None
    for message in store.recovered:
        print(message, file=sys.stderr)
    if store.split_notice:
        print(store.split_notice, file=sys.stderr)
    for stop in store.stopped:
        print(describe_stop(stop, store.folder), file=sys.stderr)
        mark_stop_reported(store, stop.id)
    return store


def describe_stop(stop: StoppedBatch, folder: Path) -> str:
    """Return the sentences that tell how far the stopped move or undo of a batch got,
    where its files are, and the command that moves them back.
    """
    undo = f"{program_name()} undo {shlex.quote(str(folder))}"
    if stop.kind is StopKind.UNDO:
        return (f"The undo of move batch {stop.id} was stopped before it reached every file: "
                f"{stop.returned} of {counted(stop.returned + stop.in_quarantine, 'file')} "
                f"{by_count(stop.returned, 'is', 'are')} back in {folder}, and "
                f"{stop.in_quarantine} {by_count(stop.in_quarantine, 'is', 'are')} still in "
                f"{stop.destination}. To move those back, run: {undo}")
    stayed = stop.total - stop.in_quarantine
    failed = (f", {stop.failed} of them because {'it' if stop.failed == 1 else 'they'} could "
              "not be moved" if stop.failed else "")
    if not stop.in_quarantine:
        return (f"Move batch {stop.id} into {stop.destination} was stopped before it moved "
                f"any file: all {counted(stop.total, 'file')} stay in {folder}{failed}.")
    return (f"Move batch {stop.id} into {stop.destination} was stopped before it reached every "
            f"file: {stop.in_quarantine} of {counted(stop.total, 'file')} were moved there, "
            f"and the other {stayed} stay in {folder}{failed}. To move the "
            f"{counted(stop.in_quarantine, 'file')} back, run: {undo}")




def scan(store: ReviewStore, model: ReferenceModel, threshold: float,
         action: str) -> FolderListing | None:
    """Score the store's folder through the cache, with a progress bar on stderr.

    Returns the folder's listing from before the scoring, and sets the store's
    skipped_folders from it. Returns None, after printing why, when the folder
    cannot be listed.
    """
    try:
        listing = list_folder(store.folder)
    except OSError as error:
        print(f"{action} failed: cannot list {store.folder}: {error.strerror or error}. "
              "Check the folder's permissions.", file=sys.stderr)
        return None
    store.skipped_folders = listing.skipped_folders
    relative_paths = listing.files
    # The callers read the results from the store afterwards, so cached files
    # only advance the progress bar.
    with tqdm(total=len(relative_paths), unit="image", file=sys.stderr,
              disable=not relative_paths) as bar:
        for done in score_changed(store, model, threshold, relative_paths):
            bar.update(done)
    if listing.skipped_folders:
        # The listing's warnings scrolled away above the progress bar.
        print(describe_skipped_folders(listing.skipped_folders, "are left out", store.folder),
              file=sys.stderr)
    elif not relative_paths:
        # A wrong path or a folder of other files would otherwise pass unnoticed.
        print(f"No image file found in {store.folder} or its subfolders. Images are the "
              f"files ending in {', '.join(sorted(IMAGE_SUFFIXES))}; hidden files and "
              "folders are left out. Check the path.", file=sys.stderr)
    return listing


def report_skipped_folders(skipped: list[SkippedFolder], consequence: str) -> int:
    """Print how many subfolders could not be read, with the `consequence` for their
    images such as "were not exported", and return the exit code.

    A command that acts on files fails when it could not reach all of them, as
    it does when a file fails. scan() printed the folders and reasons already.
    """
    if not skipped:
        return EXIT_OK
    if len(skipped) == 1:
        print(f"1 folder could not be read, so its images {consequence}; the reason is "
              "listed above.", file=sys.stderr)
    else:
        print(f"{len(skipped)} folders could not be read, so their images {consequence}; "
              "the reasons are listed above.", file=sys.stderr)
    return EXIT_FAILED
