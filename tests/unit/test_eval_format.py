"""The eval-set file: versioned, self-contained, refused with a clear reason when bad."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from onward.agent.messages import ToolResultMessage, UserMessage
from onward.agent.specs import GoalSpec
from onward.evals.format import (
    FORMAT_VERSION,
    EvalCase,
    EvalSet,
    load_eval_set,
    parse_eval_set,
    save_eval_set,
)
from onward.exceptions import EvalSetError, UserError

BUNDLED = Path(__file__).resolve().parents[2] / "evals" / "bundled.json"


def a_set() -> EvalSet:
    goal = GoalSpec(name="g", description="d", instructions="i", tools=[])
    case = EvalCase(
        id="conv-1",
        goal=goal,
        transcript=[
            UserMessage(text="hello <b>"),
            ToolResultMessage(call_id="c", tool="t", ok=True, content={"x": [1, 2]}),
        ],
    )
    return EvalSet(name="s", cases=[case])


def test_a_set_round_trips_through_its_file(tmp_path: Path) -> None:
    path = tmp_path / "sets" / "s.json"
    save_eval_set(a_set(), path)
    assert json.loads(path.read_text())["version"] == FORMAT_VERSION
    assert load_eval_set(path) == a_set()


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("{nope", "is not JSON"),
        ("[1]", "must be a JSON object"),
        ('{"version": 2, "cases": []}', "has format version 2; this onward reads version 1"),
        ('{"cases": []}', "has format version None"),
        ('{"version": 1, "cases": []}', "has no cases"),
        ('{"version": 1, "cases": [{"id": "x"}]}', "cases.0.goal: Field required"),
    ],
)
def test_a_bad_file_is_refused_with_the_reason(text: str, reason: str) -> None:
    with pytest.raises(EvalSetError, match=reason.replace("(", r"\(")) as caught:
        parse_eval_set(text, "`s.json`")
    assert str(caught.value).startswith("`s.json`") and isinstance(caught.value, UserError)


def test_a_case_with_nothing_to_replay_is_refused() -> None:
    raw = json.loads(a_set().model_dump_json())
    raw["cases"][0]["transcript"] = []
    with pytest.raises(EvalSetError, match="case `conv-1` of the eval set has no user message"):
        parse_eval_set(json.dumps(raw))


def test_a_missing_file_is_an_eval_set_error(tmp_path: Path) -> None:
    with pytest.raises(EvalSetError, match="cannot read the eval set"):
        load_eval_set(tmp_path / "absent.json")


def test_the_bundled_set_is_self_contained() -> None:
    bundled = load_eval_set(BUNDLED)
    assert {c.goal.name for c in bundled.cases} >= {"travel", "purchase", "support", "research"}
    for case in bundled.cases:
        assert case.decisions and case.model_name == "offline" and case.reached
        results = [m for m in case.transcript if isinstance(m, ToolResultMessage)]
        assert results and all(m.content_ref is None for m in results)
        assert all(m.content is not None for m in results if m.ok)
