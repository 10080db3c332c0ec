"""The settlement bookkeeping as plain functions: watermarks, held records, changes taken."""

from __future__ import annotations

from revbridge_cli.state.settlement import Tracker


def origin(line: int, file_no: int = 0) -> tuple[int, int, int]:
    return (file_no, line, line * 10)  # every line is 10 bytes


def test_watermark_waits_for_the_oldest_unsettled_record() -> None:
    t = Tracker()
    t.open_file(0)
    for line in (1, 2, 3):
        t.read(origin(line), 1)
    t.release(origin(2))
    t.release(origin(3))
    assert t.take_changes() == ({}, {0: [2, 3]})  # settled, but line 1 is still out
    t.release(origin(1))
    assert t.take_changes() == ({0: (3, 30)}, {})  # now the watermark says it all
    assert t.take_changes() == ({}, {})  # nothing is left out


def test_a_record_in_several_batches_settles_with_the_last_one() -> None:
    t = Tracker()
    t.open_file(0)
    t.read(origin(1), 1)  # held while its parts are packed
    t.add_refs(origin(1), 2)  # split over two batches
    t.release(origin(1))  # packing done
    t.release(origin(1))  # first batch
    assert t.take_changes() == ({}, {})  # still out in the second
    t.release(origin(1))  # second batch
    assert t.take_changes() == ({0: (1, 10)}, {})


def test_records_held_while_packing_block_the_watermark() -> None:
    t = Tracker()
    t.open_file(0)
    t.read(origin(1), 1)
    t.read(origin(2), 0)  # set aside at once (invalid): settled
    assert t.take_changes() == ({}, {0: [2]})
    t.release(origin(1))
    assert t.take_changes() == ({0: (2, 20)}, {})


def test_records_an_earlier_run_settled_are_not_noted_again() -> None:
    t = Tracker()
    t.open_file(0, line=4, offset=40)
    t.read(origin(5), 1)
    t.read(origin(6), 0, note=False)  # from the journal's settled set
    assert t.take_changes() == ({}, {})
    t.release(origin(5))
    assert t.take_changes() == ({0: (6, 60)}, {})


def test_files_are_tracked_apart_and_changes_are_taken_once() -> None:
    t = Tracker()
    t.open_file(0)
    t.open_file(1, line=10, offset=100)
    t.read(origin(1, 0), 1)
    t.read(origin(11, 1), 1)
    t.release(origin(11, 1))
    assert t.take_changes() == ({1: (11, 110)}, {})
    assert t.take_changes() == ({}, {})
    t.release(origin(1, 0))  # file 0's record was the one still out
    assert t.take_changes() == ({0: (1, 10)}, {})


def test_finish_moves_the_watermark_past_trailing_blank_lines_once_all_is_settled() -> None:
    t = Tracker()
    t.open_file(0)
    t.read(origin(1), 1)
    t.finish(0, 3, 32)  # two blank lines after line 1
    assert t.take_changes() == ({}, {})
    t.release(origin(1))
    assert t.take_changes() == ({0: (3, 32)}, {})


def test_finish_of_a_file_with_nothing_new_moves_nothing() -> None:
    t = Tracker()
    t.open_file(0, line=3, offset=30)
    t.finish(0, 3, 30)
    assert t.take_changes() == ({}, {})


def test_a_held_record_is_settled_by_its_last_verdict_when_the_hold_goes_first() -> None:
    """The general path's order (feed.py): the record's hold, its pieces counted, the hold
    released, and only then its batch dispatched. The verdict's own commit (the changes taken
    right after it) then says the record is done, exactly as in the fast lane's order."""
    fast, general = Tracker(), Tracker()
    for t in (fast, general):
        t.open_file(0)
    fast.read(origin(1), 1)  # the fast lane: its piece counted, no hold
    general.read(origin(1), 1)  # held while its parts are packed
    general.add_refs(origin(1), 1)  # one piece in the batch it closed
    general.release(origin(1))  # packing done, before the batch goes out
    for t in (fast, general):
        assert t.take_changes() == ({}, {})  # out in its batch
        t.release(origin(1))  # the batch's verdict
        assert t.take_changes() == ({0: (1, 10)}, {})  # that verdict's commit has it


def test_a_hold_outliving_the_verdict_leaves_the_record_to_a_later_commit() -> None:
    """Why the hold must go before the dispatch: a verdict that comes while the record is
    still held (the slow start's first batch is waited for) cannot settle it, and the commit
    that follows the hold's release may never come (kill -9 while the next batch hangs)."""
    t = Tracker()
    t.open_file(0)
    t.read(origin(1), 1)  # held
    t.add_refs(origin(1), 1)
    t.release(origin(1))  # the batch's verdict, under the hold
    assert t.take_changes() == ({}, {})  # that verdict's commit: the record still out
    t.release(origin(1))  # the hold
    assert t.take_changes() == ({0: (1, 10)}, {})  # only a later commit would say it
