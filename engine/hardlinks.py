"""Hard links for an export, decided per source file system, and why files were copied."""

from __future__ import annotations

import errno
import logging
import os
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)

# os.link errors after which the file is copied instead: EXDEV across file systems,
# EPERM or ENOTSUP where the file system has no hard links, EMLINK at the link limit.
_COPY_INSTEAD_ERRNOS = frozenset(
    {errno.EXDEV, errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK}
)


@dataclass(frozen=True)
class CopyReason:
    """The reason that files from `folder` are copied where a hard link was requested.

    `reason` is the error of the failed link, such as "Invalid cross-device
    link"; `other_file_system` is set when `folder` is on another file system than
    the destination.
    """

    folder: Path
    reason: str
    other_file_system: bool


class HardLinks:
    """Hard links from the files of the reviewed `folder` into `destination`.

    After a link across file systems fails, no other file of that source file
    system (st_dev) is tried, but the files of the other ones still are. So a
    subfolder that is another mount is copied, and the rest of the folder linked.
    The caller copies a file that `link` does not link, counts it with `copied`,
    and shows `notes()` once the export is done.
    """

    def __init__(self, folder: Path, destination: Path) -> None:
        self.folder = folder
        self.destination = destination
        # The source file systems to which links failed across devices, with the
        # reason, and the highest folder on each above a file's folder.
        self._unlinkable_devices: dict[int, str] = {}
        self._device_folders: dict[tuple[Path, int], Path] = {}
        self._copied: dict[CopyReason, int] = {}

    def link(self, source: Path, target: Path) -> CopyReason | None:
        """Hard-link `source` as `target` and return None, or why to copy it instead.

        Raises OSError for any other failure, such as FileExistsError when
        `target` exists.
        """
        device = os.stat(source).st_dev
        if device in self._unlinkable_devices:
            return CopyReason(self._device_folder(source, device),
                              self._unlinkable_devices[device], other_file_system=True)
        try:
            os.link(source, target)
        except OSError as error:
            if error.errno not in _COPY_INSTEAD_ERRNOS:
                raise
            reason = error.strerror or str(error)
            if error.errno == errno.EXDEV:
                self._unlinkable_devices[device] = reason
                return CopyReason(self._device_folder(source, device), reason,
                                  other_file_system=True)
            return CopyReason(self.folder, reason, other_file_system=False)
        return None

    def copied(self, reason: CopyReason) -> None:
        """Count one file copied for `reason`, which `link` returned."""
        self._copied[reason] = self._copied.get(reason, 0) + 1

    def notes(self) -> list[str]:
        """Return one sentence for the user per reason: how many files from which
        folder were copied instead of linked, and why.
        """
        notes = []
        for reason, count in self._copied.items():
            files = "1 file" if count == 1 else f"{count} files"
            copied = (f"{files} from {reason.folder} {'was' if count == 1 else 'were'} copied "
                      "instead of hard-linked")
            if reason.other_file_system:
                notes.append(f"{copied}, because {reason.folder} is on another file system "
                             f"than {self.destination} ({reason.reason}).")
            else:
                notes.append(f"{copied}, because hard links to {self.destination} failed for "
                             f"{'it' if count == 1 else 'them'} ({reason.reason}).")
        return notes

    def _device_folder(self, source: Path, device: int) -> Path:
        """Return the highest folder of the reviewed folder above `source` on the file
        system `device`, or `source` itself when its folder is on another one.
        """
        key = (source.parent, device)
        if key not in self._device_folders:
            highest = source
            try:
                while (highest != self.folder and highest.parent != highest
                       and os.stat(highest.parent).st_dev == device):
                    highest = highest.parent
            except OSError as error:
                logger.debug("Cannot stat %s: %s", highest.parent, error)
            self._device_folders[key] = highest
        return self._device_folders[key]
