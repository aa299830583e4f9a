"""ik.conversations: conversation structure checks, one reason per failure."""

from __future__ import annotations

import json

import pytest

import instructkit as ik


def _conv(*turns: tuple[str, str], **extra: object) -> dict:
    return {"messages": [{"role": r, "content": c} for r, c in turns], **extra}


U, A, F, T = "user", "assistant", "function_call", "tool"


def _dataset(records: list[dict]) -> ik.Dataset:
    # one format per dataset: conversations and flat records are read apart, then stacked
    chats = [r for r in records if "messages" in r or "conversations" in r]
    flat = [r for r in records if r not in chats]
    parts = [ik.Dataset.from_records(rs, source=name) for name, rs in (("chat", chats), ("flat", flat)) if rs]
    return ik.concat(parts)


def _reasons(records: list[dict], **params: object) -> list[tuple[str, dict]]:
    out = _dataset(records).pipe(ik.conversations(**params))
    return [(r, json.loads(d)) for r, d in out.removed.select("reason", "detail").rows()]


def test_well_formed_conversations_are_kept() -> None:
    records = [
        _conv((U, "Hi"), (A, "Hello")),
        _conv((U, "Weather?"), (F, '{"name": "weather"}'), (T, "sunny"), (A, "Sunny."), (U, "Thanks"), (A, "Welcome")),
        {"instruction": "Add 2 and 3.", "output": "5"},
    ]
    out = _dataset(records).pipe(ik.conversations())
    assert len(out) == 3 and out.removed.height == 0


@pytest.mark.parametrize(
    ("record", "reason", "detail"),
    [
        (_conv((U, "Hi"), (A, "  ")), "empty_turn", {"turn": 1}),
        (_conv((U, ""), (A, "x")), "empty_turn", {"turn": 0}),
        (_conv((A, "Hello"), (U, "Hi"), (A, "x")), "first_turn_not_user", {"roles": "AUA"}),
        (_conv((U, "Hi"), (A, "Hello"), (U, "And?")), "trailing_user_turn", {"roles": "UAU"}),
        (_conv((U, "Hi"), (U, "Hey"), (A, "Hello")), "not_alternating", {"roles": "UUA"}),
        (_conv((U, "Hi"), (T, "result"), (A, "Hello")), "not_alternating", {"roles": "UTA"}),
        (_conv((U, "Hi"), (A, "Hello"), (A, "Again")), "not_alternating", {"roles": "UAA"}),
        ({"instruction": "Say hi.", "output": ""}, "empty_turn", {"turn": 1}),
    ],
)
def test_each_failure_has_its_reason(record: dict, reason: str, detail: dict) -> None:
    assert _reasons([record]) == [(reason, detail)]


def test_bad_role_names_the_turn() -> None:
    records = [{"conversations": [{"from": "human", "value": "Hi"}, {"from": "system", "value": "x"}, {"from": "gpt", "value": "y"}]}]
    reasons = _reasons(records)
    assert reasons == [("bad_role", {"turn": 1, "roles": "U?A"})]


def test_tools_can_be_refused() -> None:
    record = _conv((U, "Weather?"), (F, "{}"), (T, "sunny"), (A, "Sunny."))
    assert _reasons([record]) == []
    assert _reasons([record], allow_tools=False) == [("bad_role", {"turn": 1, "roles": "U??A"})]


def test_turn_bounds() -> None:
    long = _conv(*[(U, "q"), (A, "a")] * 4)
    assert _reasons([long], max_turns=6) == [("too_many_turns", {"turns": 8, "max": 6})]
    assert _reasons([long], min_turns=10) == [("too_few_turns", {"turns": 8, "min": 10})]
    assert _reasons([long], min_turns=2, max_turns=8) == []


def test_first_failure_wins_and_nothing_is_lost() -> None:
    records = [
        _conv((A, ""), (A, "x")),  # empty, first-not-user and not-alternating: empty comes first
        _conv((U, "Hi"), (A, "Hello")),
    ]
    ds = ik.Dataset.from_records(records)
    out = ds.pipe(ik.conversations())
    assert out.removed["reason"].to_list() == ["empty_turn"]
    assert len(out) + out.removed.height == len(ds)


def test_parameters_are_checked_and_saved_in_recipes() -> None:
    with pytest.raises(ValueError, match="max_turns"):
        ik.conversations(min_turns=4, max_turns=2)
    step = ik.conversations(max_turns=20)
    assert repr(step) == "Conversations(max_turns=20)"
    assert ik.Pipeline.from_yaml(ik.Pipeline([step]).to_yaml()).steps[0].max_turns == 20
