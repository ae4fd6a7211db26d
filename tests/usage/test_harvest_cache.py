"""The harvest cache: which spans a repeated query still has to read, and how it is kept."""

from __future__ import annotations

import json
from pathlib import Path

from emr_cmk_notebook.usage.harvest import EventCache, HarvestProgress


def test_an_empty_cache_reads_the_whole_window() -> None:
    assert EventCache(None).gaps(100, 200) == [(100, 200)]


def test_a_repeated_query_reads_only_what_came_after_the_covered_span() -> None:
    cache = EventCache(None)
    cache.cover(100, 180)
    # The gap starts on the covered span's last second, where paging meets a cached event.
    assert cache.gaps(100, 300) == [(180, 300)]


def test_a_wider_window_reads_both_ends_newest_first() -> None:
    cache = EventCache(None)
    cache.cover(100, 180)
    assert cache.gaps(50, 300) == [(180, 300), (50, 100)]


def test_a_covered_window_needs_no_call() -> None:
    cache = EventCache(None)
    cache.cover(100, 180)
    cache.cover(181, 250)
    assert cache.spans == [[100, 250]]
    assert cache.gaps(120, 240) == []


def test_the_cache_survives_a_restart_and_keeps_events(tmp_path: Path) -> None:
    path = tmp_path / "cache" / "111122223333_us-east-1_key.json"
    cache = EventCache(path)
    cache.events["e1"] = (150, json.dumps({"eventID": "e1"}))
    cache.cover(100, 200)
    cache.save()
    again = EventCache(path)
    assert again.spans == [[100, 200]]
    assert again.records(100, 200) == ['{"eventID": "e1"}']
    assert list(path.parent.iterdir()) == [path]  # no temporary file left behind


def test_a_damaged_cache_file_means_a_full_read_not_an_error(tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text("{not json")
    assert EventCache(path).gaps(0, 10) == [(0, 10)]


def test_progress_reports_the_share_of_the_window_read() -> None:
    state = HarvestProgress("111122223333", "us-east-1", 3, 150, 0, 100, 25)
    assert state.fraction == 0.75
