from ws_sync.changelog import fresh_positions, list_record


def test_replace_collapses_into_the_op_that_wrote_the_slot() -> None:
    log: list[tuple[object, ...]] = [("add", 2, "a")]
    list_record(log, ("replace", 2, "b"))
    list_record(log, ("replace", 2, "c"))
    assert log == [("add", 2, "c")]
    list_record(log, ("remove", 2))
    list_record(log, ("replace", 2, "d"))
    assert log == [("add", 2, "c"), ("remove", 2), ("replace", 2, "d")]


def test_fresh_positions_follow_index_shifts() -> None:
    assert fresh_positions([("add", 0, 1), ("add", 0, 2)]) == {0, 1}
    assert fresh_positions([("add", 3, 1), ("remove", 0)]) == {2}
    assert fresh_positions([("add", 1, 1), ("remove", 1)]) == set()
    assert fresh_positions([("replace", 5, 1), ("add", 2, 0)]) == {2, 6}
