from ws_sync.changelog import list_record, shift_forward, shifting_ops, written_this_round


def test_replace_collapses_into_the_op_that_wrote_the_slot() -> None:
    log: list[tuple[object, ...]] = [("add", 2, "a")]
    list_record(log, ("replace", 2, "b"))
    list_record(log, ("replace", 2, "c"))
    assert log == [("add", 2, "c")]
    list_record(log, ("remove", 2))
    list_record(log, ("replace", 2, "d"))
    assert log == [("add", 2, "c"), ("remove", 2), ("replace", 2, "d")]


def test_written_this_round_follows_index_shifts() -> None:
    def written(log: list[tuple[object, ...]], n: int) -> set[int]:
        return {p for p in range(n) if written_this_round(log, p)}

    assert written([("add", 0, 1), ("add", 0, 2)], 5) == {0, 1}
    assert written([("add", 3, 1), ("remove", 0)], 5) == {2}
    assert written([("add", 1, 1), ("remove", 1)], 5) == set()
    assert written([("replace", 5, 1), ("add", 2, 0)], 8) == {2, 6}


def test_only_inserts_and_removals_before_the_end_shift() -> None:
    # [a, b, c] -> append d -> insert x at 0 -> pop the end -> [x, a, b, c]
    log = [("add", 3, "d"), ("add", 0, "x"), ("remove", 4), ("replace", 1, "y")]
    shifts = shifting_ops(log, 4)
    assert shifts == [(1, "add", 0)]
    assert shift_forward(shifts, [0, 1, 2]) == [1, 2, 3]
    assert shift_forward([(0, "remove", 1)], [0, 1, 2]) == [0, 1]
