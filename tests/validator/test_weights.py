"""Score EMA per uid, reset when a uid changes hands, normalized weights."""

import pytest

from blockzero.validator.weights import ScoreBook


def test_ema_and_normalization():
    book = ScoreBook().update({0: "a", 1: "b", 2: "c"}, {"a": 1.0, "b": 0.5}, alpha=0.5)
    assert book.standings[0].ema == 0.5 and book.standings[1].ema == 0.25
    book = book.update({0: "a", 1: "b", 2: "c"}, {"a": 1.0}, alpha=0.5)
    assert book.standings[0].ema == 0.75 and book.standings[1].ema == 0.125
    uids, weights = book.weights()
    assert uids == [0, 1]
    assert weights == pytest.approx([0.75 / 0.875, 0.125 / 0.875])


def test_reset_when_uid_changes_hotkey_and_drop_when_gone():
    book = ScoreBook().update({0: "a", 1: "b"}, {"a": 1.0, "b": 1.0}, alpha=1.0)
    book = book.update({0: "new-owner"}, {}, alpha=0.5)
    assert book.standings[0].hotkey == "new-owner" and book.standings[0].ema == 0.0
    assert 1 not in book.standings
    assert book.weights() == ([], [])


def test_round_trips_through_json():
    book = ScoreBook().update({3: "a"}, {"a": 0.2}, alpha=0.3)
    assert ScoreBook.model_validate_json(book.model_dump_json()) == book
