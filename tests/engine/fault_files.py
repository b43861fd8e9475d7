"""Helpers for file-fault tests: real mounts, an unprivileged user and file inventories.

Every helper meets its fault for real or fails the test with the reason and the
fix. None of them skips, because a fault test that quietly does not run proves
nothing. The mounts need root, the Debian packages exfat-fuse and exfatprogs, and
the user `curator-test`; `.ci/run` installs and creates them.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import hashlib
import os
import pwd
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

# The user that runs file operations for which permission bits must count; root
# ignores them.
UNPRIVILEGED_USER = "curator-test"
_SETUP_HINT = "run the tests as root after .ci/run's setup, or run .ci/run"


def _run(command: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, check=False, timeout=120)


def _require_root(what: str) -> None:
    if os.geteuid() != 0:
        pytest.fail(f"{what} needs root to mount a file system; {_SETUP_HINT}")


def _require_tool(name: str, package: str) -> str:
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")
    if found is None:
        pytest.fail(f"{name} not found: install the Debian package {package}, as .ci/run does")
    return found


def _checked(command: list[str]) -> str:
    result = _run(command)
    if result.returncode != 0:
        pytest.fail(f"{' '.join(command)} failed ({result.returncode}): {result.stderr.strip()}")
    return result.stdout.strip()


@contextlib.contextmanager
def tmpfs(
    mount_point: Path, size: str, *, read_only: bool = False, inodes: int | None = None
) -> Iterator[Path]:
    """Mount a tmpfs of `size` (such as "1m") at `mount_point` for the block.

    `inodes` limits how many files and folders it can hold, its root included.
    """
    _require_root("a size-limited or read-only tmpfs")
    mount_point.mkdir(parents=True, exist_ok=True)
    options = f"size={size}" + (",ro" if read_only else "")
    if inodes is not None:
        options += f",nr_inodes={inodes}"
    _checked(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(mount_point)])
    try:
        yield mount_point
    finally:
        _checked(["umount", str(mount_point)])


def fill_disk(folder: Path) -> Path:
    """Write zeros to a new file in `folder` until its file system is full; return the file.

    Removing the file frees the space again.
    """
    filler = folder / "filler"
    block = bytes(64 * 1024)
    with filler.open("wb", buffering=0) as stream:
        try:
            while True:
                stream.write(block)
        except OSError as error:
            if error.errno != errno.ENOSPC:
                raise
    return filler


@contextlib.contextmanager
def exfat(mount_point: Path, image: Path, size_mb: int = 16) -> Iterator[Path]:
    """Mount a fresh exFAT file system, which compares names case-insensitively.

    The kernel here has no exFAT or VFAT driver, so the image is formatted with
    mkfs.exfat and mounted through FUSE (mount.exfat-fuse) on a loop device. The
    block checks that the mount really folds case before yielding.
    """
    _require_root("an exFAT loop mount")
    mkfs = _require_tool("mkfs.exfat", "exfatprogs")
    mount_exfat = _require_tool("mount.exfat-fuse", "exfat-fuse")
    with image.open("wb") as stream:
        stream.truncate(size_mb * 1024 * 1024)
    _checked([mkfs, str(image)])
    loop = _checked(["losetup", "--find", "--show", str(image)])
    try:
        mount_point.mkdir(parents=True, exist_ok=True)
        _checked([mount_exfat, loop, str(mount_point)])
        try:
            _check_folds_case(mount_point)
            yield mount_point
        finally:
            _checked(["umount", str(mount_point)])
    finally:
        _checked(["losetup", "--detach", loop])


def _check_folds_case(mount_point: Path) -> None:
    probe = mount_point / "Case-Probe.txt"
    probe.write_bytes(b"probe")
    try:
        assert (mount_point / "CASE-PROBE.TXT").exists(), f"{mount_point} is case-sensitive"
    finally:
        probe.unlink()


def unprivileged_ids() -> tuple[int, int]:
    """Return the uid and gid that run permission tests: curator-test as root, else our own."""
    if os.geteuid() != 0:
        return os.getuid(), os.getgid()
    try:
        entry = pwd.getpwnam(UNPRIVILEGED_USER)
    except KeyError:
        pytest.fail(
            f"the user {UNPRIVILEGED_USER} does not exist: create it with "
            f"'useradd --system --no-create-home {UNPRIVILEGED_USER}', as .ci/run does"
        )
    return entry.pw_uid, entry.pw_gid


@contextlib.contextmanager
def shared_temp_folder() -> Iterator[Path]:
    """A temporary folder owned by the unprivileged user, in a place that user can reach.

    pytest's tmp_path lies under a folder only its owner can enter, so a child
    running as another user could not reach it.
    """
    uid, gid = unprivileged_ids()
    folder = Path(tempfile.mkdtemp(prefix="curator-faults-"))
    os.chown(folder, uid, gid)
    os.chmod(folder, 0o755)
    try:
        yield folder
    finally:
        # Restore write permission everywhere, so that the clean-up can remove the tree.
        for root, dirs, _files in os.walk(folder):
            for name in dirs:
                os.chmod(Path(root, name), 0o755)
        shutil.rmtree(folder)


def give_to_user(root: Path) -> None:
    """Make the unprivileged user own `root` and everything under it."""
    uid, gid = unprivileged_ids()
    for folder, dirs, files in os.walk(root):
        os.chown(folder, uid, gid)
        for name in dirs + files:
            os.chown(Path(folder, name), uid, gid, follow_symlinks=False)


def make_read_only(root: Path) -> None:
    """Remove write permission from `root`, its subfolders and its files."""
    for folder, dirs, files in os.walk(root, topdown=False):
        for name in files:
            path = Path(folder, name)
            os.chmod(path, stat.S_IMODE(os.lstat(path).st_mode) & ~0o222)
        for name in dirs:
            os.chmod(Path(folder, name), 0o555)
    os.chmod(root, 0o555)


def run_unprivileged(
    arguments: list[str], home: Path, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """Run `python arguments...` from the repository as the unprivileged user.

    As root the child drops to curator-test with setpriv, so permission bits
    count; otherwise it runs as the current user. `home` becomes the child's HOME
    and XDG_DATA_HOME, because review databases of read-only folders go there.
    """
    command = [sys.executable, *arguments]
    if os.geteuid() == 0:
        setpriv = _require_tool("setpriv", "util-linux")
        uid, gid = unprivileged_ids()
        command = [setpriv, f"--reuid={uid}", f"--regid={gid}", "--clear-groups", *command]
        _check_checkout_readable(tuple(command[:5]))
    environment = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONPATH": str(REPO),
        "HOME": str(home),
        "XDG_DATA_HOME": str(home / "data"),
        "LC_ALL": "C.UTF-8",
    }
    return subprocess.run(
        command,
        cwd=REPO,
        env=environment,
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout,
    )


@functools.cache
def _check_checkout_readable(as_user: tuple[str, ...]) -> None:
    """Fail with advice when the unprivileged user cannot read this checkout."""
    probe = subprocess.run([*as_user, "-c", f"open({str(REPO / 'main.py')!r}).close()"],
                           cwd=REPO, capture_output=True, text=True, check=False)
    if probe.returncode != 0:
        reason = (probe.stderr.strip().splitlines() or ["no output"])[-1]
        pytest.fail(
            f"{UNPRIVILEGED_USER} cannot read the checkout {REPO} or its Python "
            f"({reason}): let other users enter and read its folders, "
            "e.g. with 'chmod o+rx' on a temporary folder that holds the clone"
        )


def sha256_inventory(*roots: Path) -> dict[str, str]:
    """Map every regular file under `roots` (root name / relative path) to its SHA-256.

    Links are listed by their text, never followed. Review databases are left out.
    """
    found: dict[str, str] = {}
    for root in roots:
        for folder, dirs, files in os.walk(root):
            dirs[:] = [name for name in dirs if name != ".retina-curator"]
            for name in files + [d for d in dirs if os.path.islink(Path(folder, d))]:
                path = Path(folder, name)
                key = f"{root.name}/{path.relative_to(root).as_posix()}"
                mode = os.lstat(path).st_mode
                if stat.S_ISLNK(mode):
                    found[key] = "link:" + os.readlink(path)
                elif stat.S_ISREG(mode):
                    found[key] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


def contents(inventory: dict[str, str]) -> list[str]:
    """Return the sorted digests of an inventory: what exists, wherever it is."""
    return sorted(inventory.values())
