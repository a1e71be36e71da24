"""The commit log: versions, a bounded history, and what a client missed."""

from ws_sync.commit import CommitLog


def test_versions_count_commits_and_since_returns_what_was_missed() -> None:
    log = CommitLog()
    for i in range(1, 4):
        log.append(f"frame{i}")
    assert log.version == 3
    assert log.since(log.epoch, 3) == []
    assert log.since(log.epoch, 1) == ["frame2", "frame3"]
    assert log.since(log.epoch, 0) == ["frame1", "frame2", "frame3"]


def test_another_epoch_or_a_version_from_the_future_needs_the_whole_state() -> None:
    log = CommitLog()
    log.append("f")
    assert log.since("another", 1) is None
    assert log.since(log.epoch, 2) is None
    assert log.since(log.epoch, -1) is None


def test_history_is_bounded_by_count_and_characters() -> None:
    log = CommitLog(max_commits=3, max_chars=1000)
    for i in range(1, 11):
        log.append(f"f{i}")  # the frame of version i
    assert log.since(log.epoch, 8) == ["f9", "f10"]
    assert log.since(log.epoch, 7) == ["f8", "f9", "f10"]
    assert log.since(log.epoch, 6) is None  # f7 is gone
    small = CommitLog(max_commits=100, max_chars=10)
    for _ in range(5):
        small.append("abcd")
    assert small.chars <= 10
    assert small.since(small.epoch, 3) == ["abcd", "abcd"]
    assert small.since(small.epoch, 2) is None


def test_a_restart_keeps_counting_but_forgets_the_history() -> None:
    log = CommitLog()
    log.append("a")
    log.restart()
    assert log.version == 2
    assert log.since(log.epoch, 2) == []
    assert log.since(log.epoch, 1) is None
    assert CommitLog().epoch != CommitLog().epoch


def test_the_history_bounds_are_sync_options() -> None:
    from ws_sync import sync_all

    class Small:
        @sync_all("SMALL", history_commits=2, history_chars=100)
        def __init__(self) -> None:
            self.n = 0

    small = Small()
    assert (small.sync.log.max_commits, small.sync.log.max_chars) == (2, 100)
