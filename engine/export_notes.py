"""Notes of an export for the user: why a file got another name, and what earlier exports left."""

from __future__ import annotations

from pathlib import Path, PurePath

from engine.names import FolderNames, fold_name, name_difference, name_max, spelling

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
    if count > _SHOWN_PATHS:
        named = f"{', '.join(paths[:_SHOWN_PATHS])} and {count - _SHOWN_PATHS} more"
    elif count > 1:
        named = f"{', '.join(paths[:-1])} and {paths[-1]}"
    else:
        named = paths[0]
    single = count == 1
    are, subject, pronoun = ("is", "It", "it") if single else ("are", "They", "them")
    return (f"{_files(count)} that {are} rejected or in quarantine now, and so "
            f"{_were(count)} not exported, {are} still in {destination} from an "
            f"earlier export, with the same content: {named}. {subject} {_were(count)} "
            "left there, because nothing is ever deleted; remove "
            f"{pronoun} by hand if the cleaned set should not have {pronoun}. The JSON "
            f"manifest lists {'it' if single else 'all of them'} in \"left_in_destination\" "
            "of its summary.")


def _files(count: int) -> str:
    return "1 file" if count == 1 else f"{count} files"


def _were(count: int) -> str:
    return "was" if count == 1 else "were"
