"""Comparing two chaos runs: transcripts message by message, ledgers row by row.

What differs between two runs by nature (wall-clock times, ids the workflow draws at
random, store references of content holding times) is taken out first; anything else
that differs is a fault: a lost or doubled input, a repeated side effect.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass
from typing import Any

from onward.agent.messages import Message, UserMessage
from onward.examples.chaos.scenarios import RunResult

_TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:\d{2})?")


def strip_times(value: Any) -> Any:
    """Drop wall-clock fields (`*_at`): they differ between runs by nature, not by fault."""
    if isinstance(value, dict):
        return {
            k: strip_times(v)
            for k, v in value.items()  # pyright: ignore[reportUnknownVariableType]
            if not (isinstance(k, str) and k.endswith("_at"))
        }
    if isinstance(value, list):
        return [strip_times(v) for v in value]  # pyright: ignore[reportUnknownVariableType]
    if isinstance(value, str):
        return _TIMESTAMP.sub("<time>", value)
    return value


def comparable(messages: list[Message]) -> list[dict[str, Any]]:
    """A transcript as JSON without what differs between two runs by nature: wall-clock
    times, the ids the workflow gives messages sent without one (`m-…`, random per run,
    e.g. the first message of a create), and the store references of tool results (a
    hash of content that holds times; the content itself is compared)."""
    out: list[dict[str, Any]] = []
    for message in messages:
        data = strip_times(message.model_dump(mode="json"))
        if isinstance(message, UserMessage) and (message.id or "").startswith("m-"):
            data["id"] = "<chosen by the workflow>"
        data.pop("content_ref", None)
        out.append(data)
    return out


def row_key(row: dict[str, Any]) -> str:
    return json.dumps(row, sort_keys=True, default=str)


@dataclass
class Comparison:
    """How a disturbed run's end state differs from the undisturbed one's."""

    identical: int
    duplicated_effects: int
    lost_effects: int
    differences: list[str]


def compare_runs(baseline: RunResult, chaos: RunResult) -> Comparison:
    """Transcripts (per conversation) and ledger rows (as a multiset) of both runs."""
    differences: list[str] = []
    identical = 0
    for cid, expected in baseline.transcripts.items():
        got = chaos.transcripts.get(cid, [])
        if got == expected:
            identical += 1
            continue
        pairs = zip(expected, got, strict=False)
        at = next((i for i, (a, b) in enumerate(pairs) if a != b), min(len(expected), len(got)))
        differences.append(
            f"transcript of {cid} differs from the undisturbed run at message {at}: "
            + _difference(expected[at : at + 1], got[at : at + 1])
        )
    duplicated = lost = 0
    for table in sorted(set(baseline.ledger) | set(chaos.ledger)):
        want = Counter(row_key(r) for r in baseline.ledger.get(table, []))
        got = Counter(row_key(r) for r in chaos.ledger.get(table, []))
        for key in want | got:
            if got[key] > want[key]:
                duplicated += got[key] - want[key]
                differences.append(f"{table}: extra row {key}")
            elif got[key] < want[key]:
                lost += want[key] - got[key]
                differences.append(f"{table}: missing row {key}")
    return Comparison(identical, duplicated, lost, differences)


def _difference(expected: list[dict[str, Any]], got: list[dict[str, Any]]) -> str:
    """The fields of one message that differ (or the messages, when one is missing)."""
    if not expected or not got:
        return f"expected {json.dumps(expected)[:300]}, got {json.dumps(got)[:300]}"
    want, have = expected[0], got[0]
    fields = sorted(k for k in want.keys() | have.keys() if want.get(k) != have.get(k))
    return "; ".join(
        f"{k}: expected {json.dumps(want.get(k))[:200]}, got {json.dumps(have.get(k))[:200]}"
        for k in fields
    )
