"""The hub's book of agents: seq gaps and duplicates against a plain set (hypothesis), and status messages."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hub.agents import MAX_RUNS, UNKNOWN_AGENT, AgentBook, SeqTracker
from telemetry.metrics import Metrics


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=300), max_size=400))
def test_tracker_agrees_with_a_set(seqs: list[int]) -> None:
    tracker, seen, dups = SeqTracker(), set(), 0
    for seq in seqs:
        tracker.observe(seq)
        dups += seq in seen
        seen.add(seq)
    assert tracker.duplicates == dups
    expected_missing = (max(seen) - min(seen) + 1 - len(seen)) if seen else 0
    assert tracker.missing == expected_missing
    assert [s for lo, hi in tracker.runs for s in range(lo, hi + 1)] == sorted(seen)
    assert all(a[1] + 1 < b[0] for a, b in zip(tracker.runs, tracker.runs[1:], strict=False))  # disjoint, merged


def test_tracker_stays_small_however_holey() -> None:
    tracker = SeqTracker()
    for seq in range(1, 10 * MAX_RUNS, 2):  # every other point missing
        tracker.observe(seq)
    assert len(tracker.runs) <= MAX_RUNS
    assert tracker.missing == 5 * MAX_RUNS - 1  # folded holes still count


def status(state: str, devices: list[str] | None = None) -> bytes:
    return json.dumps({"state": state, "ts": 1_700_000_000_000, "version": "0.1.0",
                       **({"devices": devices} if devices is not None else {})}).encode()


def test_status_names_devices_and_online_state() -> None:
    metrics = Metrics()
    book = AgentBook(metrics)
    book.status("lab", "pi", status("online", ["mainmeter", "node17"]))
    book.observe("lab", "mainmeter", [1, 2, 3])
    book.observe("lab", "node17", [4, 6, 6])
    book.observe("lab", "stranger", [1])
    book.status("lab", "pi", status("offline"))  # the last will: no device list, the known one stays
    snap = {s["agent"]: s for s in book.snapshot()}
    assert snap["pi"]["online"] is False and snap["pi"]["devices"] == ["mainmeter", "node17"]
    assert (snap["pi"]["gaps"], snap["pi"]["duplicates"], snap["pi"]["last_seq"]) == (1, 1, 6)
    assert snap[UNKNOWN_AGENT]["last_seq"] == 1
    assert metrics.value("powerhub_agent_online", site="lab", agent="pi") == 0
    assert metrics.value("powerhub_seq_gaps", site="lab", agent="pi") == 1
    assert metrics.value("powerhub_seq_duplicates_total", site="lab", agent="pi") == 1
    assert book.agent_of("lab", "node17") == "pi"


def test_one_of_several_hubs_does_not_count_what_the_others_took_as_gaps() -> None:
    metrics = Metrics()
    book = AgentBook(metrics, count_gaps=False)  # a hub on a shared subscription: every other message
    book.observe("lab", "mainmeter", [1, 2, 5, 6, 9])
    [snap] = book.snapshot()
    assert (snap["gaps"], snap["last_seq"]) == (None, 9)
    assert "powerhub_seq_gaps" not in metrics.render()


@pytest.mark.parametrize(("payload", "message"), [
    (b"\xff", "not JSON"), (b"[" * 100_000 + b"]" * 100_000, "not JSON"), (b"[]", "state"),
    (b'{"state": "sleeping"}', "state"),
    (b'{"state": "online", "devices": "x"}', "devices"), (b'{"state": "online", "devices": ["a b"]}', "device"),
])
def test_bad_status_is_an_error(payload: bytes, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        AgentBook().status("lab", "pi", payload)
