"""Tests of the counted nouns of messages."""

from __future__ import annotations

from engine.plurals import by_count, counted


def test_counted_noun_is_plural_unless_one() -> None:
    assert [counted(count, "image") for count in (0, 1, 2, 21)] == [
        "0 images", "1 image", "2 images", "21 images"]
    assert counted(3, "kept image") == "3 kept images"


def test_words_agree_with_count() -> None:
    assert [by_count(count, "was", "were") for count in (0, 1, 2)] == ["were", "was", "were"]
