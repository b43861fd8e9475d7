"""Counted nouns and the words that agree with a count, for messages in English."""

from __future__ import annotations


def counted(count: int, noun: str) -> str:
    """Return "1 image" or "3 images": `count`, then `noun` with an "s" unless it is 1."""
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def by_count(count: int, one: str, other: str) -> str:
    """Return `one` for a count of 1 and `other` for any other count: "was" or "were"."""
    return one if count == 1 else other
