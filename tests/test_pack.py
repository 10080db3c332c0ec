"""Packing user parts into size-bounded request bodies: plain functions, exact bytes."""

from __future__ import annotations

import random
from typing import Any

import orjson
import pytest

from revbridge_cli import contract
from revbridge_cli.pack.batch import Batch
from revbridge_cli.pack.packer import DEFAULT_BUFFER_BYTES, START_LANE_BYTES, Packer
from revbridge_cli.shape.parts import UserPart, shape

TS = "2026-01-15T14:30:00Z"


def part(user: str, n: int, line: int | None = None, **extra: Any) -> UserPart:
    record = {"user_id": user, "event_name": "purchase", "timestamp": TS, "seq": n, **extra}
    (item,) = shape(record, (0, line if line is not None else n, 0))
    assert isinstance(item, UserPart)
    return item


def pack_all(packer: Packer, parts: list[UserPart]) -> tuple[list[Batch], list[Any]]:
    batches: list[Batch] = []
    too_big: list[Any] = []
    for p in parts:
        out = packer.add(p)
        if out is not None:  # None: placed whole in an open batch, nothing closed
            batches += out.batches
            too_big += out.too_big
    batches += packer.flush()
    return batches, too_big


def bodies(batches: list[Batch]) -> list[dict[str, Any]]:
    return [orjson.loads(b.body()) for b in batches]


def seqs_by_user(batches: list[Batch]) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for body in bodies(batches):
        for user in body["users"]:
            out.setdefault(user["identifiers"]["user_id"], []).extend(
                e["seq"] for e in user["events"]
            )
    return out


def test_size_is_exactly_the_body_length() -> None:
    parts = [part(f"u{i % 7}", i, pad="é" * (i % 13)) for i in range(200)]
    parts.append(part("u1", 999, user_properties={"tier": "gold"}))
    parts.append(part("u1", 1000, user_properties={"tier": "platinum", "x": 1}))
    batches, _ = pack_all(Packer(lanes=3, max_users=5, max_bytes=2_000), parts)
    assert len(batches) > 3
    for batch in batches:
        assert batch.size == len(batch.body())
        assert contract.request_error(orjson.loads(batch.body())) is None


def test_same_user_becomes_one_user_object_with_events_in_input_order() -> None:
    parts = [part("a", 1), part("b", 2), part("a", 3), part("a", 4), part("b", 5)]
    (batch,) = pack_all(Packer(), parts)[0]
    users = orjson.loads(batch.body())["users"]
    assert [u["identifiers"]["user_id"] for u in users] == ["a", "b"]
    assert [e["seq"] for e in users[0]["events"]] == [1, 3, 4]
    assert [e["seq"] for e in users[1]["events"]] == [2, 5]
    assert batch.users[0].n_events == 3
    assert [o[1] for o in batch.users[0].origins] == [1, 3, 4]


def test_user_properties_merge_last_write_wins_in_input_order() -> None:
    parts = [
        part("a", 1, user_properties={"tier": "silver", "city": "Oslo"}),
        part("a", 2),
        part("a", 3, user_properties={"tier": "gold"}),
    ]
    (batch,) = pack_all(Packer(), parts)[0]
    (user,) = orjson.loads(batch.body())["users"]
    assert user["user_properties"] == {"tier": "gold", "city": "Oslo"}


def test_profile_fields_of_identifiers_are_merged() -> None:
    first = part("a", 1, identifiers={"first_name": "Ada"})
    second = part("a", 2, email="a@example.com")  # another key: another user
    third = part("a", 3, identifiers={"last_name": "Lovelace"})
    batches, _ = pack_all(Packer(), [first, second, third])
    users = bodies(batches)[0]["users"]
    assert len(users) == 2
    assert users[0]["identifiers"] == {"first_name": "Ada", "user_id": "a", "last_name": "Lovelace"}
    assert batches[0].size == len(batches[0].body())


def test_max_users_per_request() -> None:
    parts = [part(f"u{i}", i) for i in range(25)]
    batches, _ = pack_all(Packer(max_users=10), parts)
    assert [len(b.users) for b in batches] == [10, 10, 5]


def test_max_bytes_is_never_exceeded_with_fat_events() -> None:
    parts = [part(f"u{i % 9}", i, pad="x" * (100 + 37 * (i % 11))) for i in range(300)]
    batches, too_big = pack_all(Packer(lanes=4, max_bytes=1_500), parts)
    assert not too_big
    assert all(len(b.body()) <= 1_500 for b in batches)
    assert sorted(s for v in seqs_by_user(batches).values() for s in v) == list(range(300))


def test_a_batch_is_filled_close_to_the_limit() -> None:
    parts = [part(f"u{i}", i, pad="x" * 100) for i in range(100)]
    batches, _ = pack_all(Packer(max_bytes=2_000), parts)
    one_user = len(batches[0].body()) // len(batches[0].users)
    assert all(len(b.body()) > 2_000 - 2 * one_user for b in batches[:-1])


def test_a_user_too_big_for_one_batch_is_split_in_order() -> None:
    parts = [part("big", i, pad="x" * 300) for i in range(20)]
    batches, too_big = pack_all(Packer(max_bytes=1_200), parts)
    assert not too_big
    assert len(batches) > 3
    assert all(len(b.body()) <= 1_200 for b in batches)
    assert all(len(b.users) == 1 for b in batches)
    assert seqs_by_user(batches) == {"big": list(range(20))}


def test_one_part_with_many_events_is_split_across_batches() -> None:
    user = {
        "identifiers": {"user_id": "u"},
        "user_properties": {"p": 1},
        "events": [{"event_name": "e", "seq": i, "pad": "y" * 200} for i in range(10)],
    }
    (p,) = shape(user, (0, 1, 0))
    assert isinstance(p, UserPart)
    packer = Packer(max_bytes=800)
    out = packer.add(p)
    batches = [*out.batches, *packer.flush()]
    assert out.placed == len(batches) > 1
    for body in bodies(batches):
        (u,) = body["users"]
        assert u["user_properties"] == {"p": 1}  # every piece carries the profile update
    assert [e["seq"] for b in bodies(batches) for e in b["users"][0]["events"]] == list(range(10))


def test_an_event_that_can_never_fit_is_set_aside_and_the_rest_goes() -> None:
    parts = [part("u", 1), part("u", 2, pad="x" * 5_000), part("u", 3)]
    batches, too_big = pack_all(Packer(max_bytes=1_000), parts)
    ((invalid, origin),) = too_big
    assert origin == (0, 2, 0)
    assert invalid.message.endswith("the request would exceed the 1,000-byte limit")
    assert invalid.message.startswith("event is 5,")
    assert invalid.user["events"][0]["seq"] == 2
    assert invalid.user["identifiers"] == {"user_id": "u"}
    assert seqs_by_user(batches) == {"u": [1, 3]}


def test_lanes_keep_each_user_in_one_lane() -> None:
    packer = Packer(lanes=4, max_users=3, max_bytes=3_000)
    parts = [part(f"u{i % 17}", i, pad="z" * (i % 50)) for i in range(400)]
    batches, _ = pack_all(packer, parts)
    lane_of: dict[str, set[int]] = {}
    for batch in batches:
        for user in orjson.loads(batch.body())["users"]:
            lane_of.setdefault(user["identifiers"]["user_id"], set()).add(batch.lane)
    assert all(len(lanes) == 1 for lanes in lane_of.values())
    assert len({b.lane for b in batches}) > 1
    # in lane order the events of each user stay in input order
    per_lane = sorted(batches, key=lambda b: (b.lane, b.seq))
    for seqs in seqs_by_user(per_lane).values():
        assert seqs == sorted(seqs)


def test_a_user_spread_through_the_input_travels_as_one_object() -> None:
    """The grouping buffer: users interleaved through a file (the common export) still get
    one user object each, with every event in order, when the buffer holds them."""
    parts = [part(f"u{i % 50}", i) for i in range(500)]
    batches, _ = pack_all(Packer(lanes=2), parts)
    users = [u for body in bodies(batches) for u in body["users"]]
    assert len(users) == 50
    assert all(len(u["events"]) == 10 for u in users)
    assert all(seqs == sorted(seqs) for seqs in seqs_by_user(batches).values())


def test_the_buffer_is_bounded_and_sends_the_oldest_users_first() -> None:
    """Past its budget a lane closes a batch of its oldest users: a record waits for its
    request only as long as the buffer takes to fill, however long the file."""
    packer = Packer(buffer_bytes=50_000, max_users=10)
    first_batch_at = None
    batches: list[Batch] = []
    for i in range(2_000):
        out = packer.add(part(f"u{i}", i, pad="x" * 100))
        if out is not None:
            first_batch_at = first_batch_at if first_batch_at is not None else i
            batches += out.batches
    assert first_batch_at is not None and first_batch_at < 200
    order = [u["identifiers"]["user_id"] for body in bodies(batches) for u in body["users"]]
    assert order == [f"u{i}" for i in range(len(order))]
    assert len(order) > 1_500  # what is still held is at most one budget's worth


def test_grow_quadruples_the_buffer_up_to_its_limit() -> None:
    packer = Packer(lanes=4, buffer_bytes=100_000_000)
    assert packer.buffer_bytes == 4 * START_LANE_BYTES and not packer.grown
    assert packer.grow() and packer.buffer_bytes == 16 * START_LANE_BYTES and packer.grown
    while packer.grow():
        pass
    assert packer.buffer_bytes == 100_000_000
    small = Packer(buffer_bytes=10_000)
    assert small.buffer_bytes == 10_000 and not small.grow()


def test_batches_get_increasing_sequence_numbers() -> None:
    batches, _ = pack_all(Packer(max_users=1), [part(f"u{i}", i) for i in range(5)])
    assert [b.seq for b in batches] == [1, 2, 3, 4, 5]


@pytest.mark.parametrize("max_users", [0, contract.MAX_USERS + 1])
def test_max_users_out_of_range_is_refused(max_users: int) -> None:
    with pytest.raises(ValueError, match="max_users"):
        Packer(max_users=max_users)


def test_max_bytes_too_small_is_refused() -> None:
    with pytest.raises(ValueError, match="too small"):
        Packer(max_bytes=10)


def test_random_streams_keep_limits_order_and_every_event() -> None:
    """Many random mixes of flat events and fat user records, under random limits: every
    body is exactly its counted size and within both limits, each user's events keep their
    input order across batches, and every event is either in a batch or set aside."""
    rng = random.Random(5)
    for _ in range(200):
        max_users = rng.choice([1, 2, 3, 10, 1000])
        max_bytes = rng.choice([300, 600, 2000, 100_000])
        packer = Packer(
            lanes=rng.choice([1, 2, 4]),
            max_users=max_users,
            max_bytes=max_bytes,
            buffer_bytes=rng.choice([1, 3_000, 30_000, DEFAULT_BUFFER_BYTES]),
        )
        grow_at = rng.randrange(120)
        batches: list[Batch] = []
        too_big = 0
        expected: dict[str, list[tuple[int, int]]] = {}
        for i in range(rng.randint(1, 120)):
            user = f"u{rng.randrange(8)}"
            record: dict[str, Any]
            if rng.random() < 0.2:
                record = {
                    "identifiers": {"user_id": user, "first_name": rng.choice("ab")},
                    "user_properties": {"k": i},
                    "events": [
                        {"event_name": "e", "seq": [i, j], "pad": "x" * rng.randrange(400)}
                        for j in range(rng.randint(1, 6))
                    ],
                }
            else:
                record = {"user_id": user, "event_name": "e", "seq": [i, 0]}
                record["pad"] = "x" * rng.randrange(300)
                if rng.random() < 0.3:
                    record["user_properties"] = {"k": i}
            if i == grow_at:
                packer.grow()
            for item in shape(record, (0, i, 0)):
                assert isinstance(item, UserPart)
                expected.setdefault(user, []).extend(tuple(e["seq"]) for e in item.events)
                out = packer.add(item)
                if out is not None:
                    batches += out.batches
                    too_big += len(out.too_big)
        batches += packer.flush()
        got: dict[str, list[tuple[int, int]]] = {}
        for batch in batches:
            body = batch.body()
            assert len(body) == batch.size <= max_bytes
            assert len(batch.users) == batch.n_users <= max_users
            users = orjson.loads(body)["users"]
            assert batch.n_events == sum(len(u["events"]) for u in users)
            ids = [u["identifiers"]["user_id"] for u in users]
            assert len(ids) == len(set(ids))  # a user once a request
            for i, user_obj in enumerate(users):
                assert orjson.loads(batch.user_data(i)) == user_obj
                assert batch.users[i].n_events == len(user_obj["events"])
                lines = {line for _, line, _ in batch.users[i].origins}
                assert {e["seq"][0] for e in user_obj["events"]} <= lines
                got.setdefault(user_obj["identifiers"]["user_id"], []).extend(
                    tuple(e["seq"]) for e in user_obj["events"]
                )
        for user, seen in got.items():
            assert seen == [s for s in expected[user] if s in set(seen)]
        assert sum(map(len, got.values())) + too_big == sum(map(len, expected.values()))
