"""Notes of an export for the user: why a file got another name, and what earlier exports left."""

from __future__ import annotations

from pathlib import Path, PurePath

from engine.names import FolderNames, fold_name, name_difference, name_max, spelling
from engine.plurals import by_count, counted

# How many of the files that an earlier export left in the destination a note names.
_SHOWN_PATHS = 3

# The file systems on which two names that differ only in this way (a result of
# names.name_difference) are one name.
_ONE_NAME_ON = {
    "case": "case-insensitive file systems such as exFAT, NTFS and the default APFS",
    "Unicode normalisation": "file systems that ignore normalisation, such as APFS and "
    "HFS+ on macOS",
    "case and Unicode normalisation": "file systems that ignore both, such as the default "
    "APFS on macOS",
}


def renamed_note(relative_path: str, target: Path, destination: Path, names: FolderNames,
                 *, present: bool = False) -> str:
    """Return the note with the reason that `relative_path` was exported as `target`.

    `names` are those of the folder of `target`. `present`: the file was found
    under that name from an earlier export.
    """
    exported_as = target.relative_to(destination).as_posix()
    requested = PurePath(relative_path).name
    folded = fold_name(requested)
    if folded in names.claimed:
        other, where = names.claimed[folded], "was exported before it"
    elif folded in names.existing_folded:
        other, where = names.existing_folded[folded], "was in the destination already"
    else:
        other, where = "", ""
    difference = name_difference(requested, other) if other else ""
    other_path = (target.parent / other).relative_to(destination).as_posix() if other else ""
    if "normalisation" in difference:
        # The two names look alike, so the note gives the spelling of each.
        relative_path = f"{relative_path} ({spelling(requested)})"
        other_path = f"{other_path} ({spelling(other)})"
    if present:
        note = (f"{relative_path} was there already as {exported_as}, with the same "
                "content, so it was not copied again.")
        if other:
            note += (f" Its name differs only in {difference} from {other_path}, which "
                     f"{where}. The two names would be one on {_ONE_NAME_ON[difference]}.")
    elif other:
        note = (f"{relative_path} was exported as {exported_as}, because its name differs "
                f"only in {difference} from {other_path}, which {where}. The two names "
                f"would be one on {_ONE_NAME_ON[difference]}.")
    else:
        # The name was free when the folder was listed, but creating it failed.
        note = (f"{relative_path} was exported as {exported_as}, because another program "
                "created a file of that name during the export, or the file system "
                "counts another name there as the same.")
    if not target.name.startswith(f"{PurePath(requested).stem} ("):
        note += (f" The numbered name was shortened to fit the limit of "
                 f"{name_max(target.parent)} bytes of file names there.")
    return note


def left_behind_note(paths: list[str], destination: Path) -> str:
    """Return the note on the copies at `paths`, relative to `destination`, that an
    earlier export left there of files that this export does not export.
    """
    count = len(paths)
    single = count == 1
    are, subject, pronoun = ("is", "It", "it") if single else ("are", "They", "them")
    were = by_count(count, "was", "were")
    return (f"{counted(count, 'file')} that {are} rejected or in quarantine now, and so "
            f"{were} not exported, {are} still in {destination} from an earlier export, "
            f"with the same content: {_named(paths)}. {subject} {were} left there, because "
            f"nothing is ever deleted; remove {pronoun} by hand if the cleaned set should not "
            f"have {pronoun}. The JSON manifest lists {'it' if single else 'all of them'} in "
            "\"left_in_destination\" of its summary.")


def not_reviewed_note(paths: list[str], folder: Path) -> str:
    """Return the note on the image files at `paths`, relative to `folder`, that are
    not in its review, so the export neither copied them nor gave them manifest rows.
    """
    count = len(paths)
    if count == 1:
        are, was, has, they, them, every = "is", "It was", "has", "it", "it", "it"
    else:
        are, was, has, they, them, every = "are", "They were", "have", "they", "them", \
            "all of them"
    return (f"{counted(count, 'file')} in {folder} {are} not in its review, because no scan has "
            f"scored {them}: {_named(paths)}. {was} not exported and {has} no row in the "
            f"manifests, whatever decision {they} would get, so the JSON manifest says "
            f"\"complete\": false and lists {every} in \"not_reviewed\" of its summary. "
            f"Score the folder, then export again with the merge option to add {them}.")


def destination_full_error(paths: list[str], destination: Path) -> str:
    """Return the one error for the kept files at `paths`, relative to the reviewed
    folder, that an export did not try after it found the disk of `destination` full.
    """
    count = len(paths)
    return (f"{counted(count, 'file')} {by_count(count, 'was', 'were')} not exported, "
            f"because {destination} is full: {_named(paths)}. Free some space on that disk, "
            "then export again with the merge option to add them.")


def copied_without_manifest(paths: list[str]) -> str:
    """Return the sentences, led by a space, that name the files at `paths`, relative
    to the destination, which an export copied there before it failed to write its
    manifests, or "" if there are none.

    Every path is named, because no manifest records them.
    """
    if not paths:
        return ""
    count = len(paths)
    return (f" {counted(count, 'file')} {by_count(count, 'was', 'were')} copied into it "
            f"without a manifest: {', '.join(paths)}. Remove {by_count(count, 'it', 'them')}, "
            "or free some space and export again with the merge option, which writes the "
            "manifests.")


def _named(paths: list[str]) -> str:
    """Return the first _SHOWN_PATHS of `paths` joined for a sentence, with the count
    of the others.
    """
    count = len(paths)
    if count > _SHOWN_PATHS:
        return f"{', '.join(paths[:_SHOWN_PATHS])} and {count - _SHOWN_PATHS} more"
    if count > 1:
        return f"{', '.join(paths[:-1])} and {paths[-1]}"
    return paths[0]


