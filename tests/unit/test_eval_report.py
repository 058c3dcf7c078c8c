"""The eval report's renderers: HTML (self-contained, escaped), JSON (its schema),
the terminal tables (recorded text is never markup)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from html.parser import HTMLParser

import jsonschema
import pytest
from rich.console import Console

from onward.agent.eval_contracts import (
    CallRef,
    Candidate,
    CaseReport,
    EvalProgress,
    EvalReport,
    EvalTotals,
    TurnDecisions,
    TurnReport,
)
from onward.agent.messages import Usage
from onward.evals import figures
from onward.evals.report_html import render_html
from onward.evals.report_json import render_json, report_schema
from onward.evals.report_terminal import ProgressBar, render

HOSTILE = '<script>alert("x")</script> & [red]not markup[/red]'


def a_report() -> EvalReport:
    recorded = TurnDecisions(
        calls=[CallRef(tool="add", args={"a": 2, "note": HOSTILE})], end="asked", text="= 3"
    )
    candidate = TurnDecisions(
        calls=[CallRef(tool="multiply", args={"a": 2})], end="asked", text=HOSTILE
    )
    diverged = CaseReport(
        index=0,
        case_id="conv-<1>",
        conversation_id="eval-1~case1",
        goal="test-math",
        turns=[
            TurnReport(
                turn=1,
                user="1",
                recorded=recorded.model_copy(update={"calls": [], "text": "= 2"}),
                candidate=recorded.model_copy(update={"calls": [], "text": "= 2"}),
                differs=False,
            ),
            TurnReport(
                turn=2,
                user=HOSTILE,
                recorded=recorded,
                candidate=candidate,
                differs=True,
                reasons=["called `multiply`, which the recording did not"],
                added=candidate.calls,
                removed=recorded.calls,
                text_changed=True,
            ),
        ],
        diverging_turns=[2],
        calls_added=1,
        calls_removed=1,
        not_executed=1,
        recorded_reached=True,
        candidate_reached=False,
        recorded_usage=Usage(requests=2, input_tokens=200, output_tokens=40, cost_usd=0.002),
        candidate_usage=Usage(input_tokens=100, cost_usd=None, cost_unknown_requests=2),
        recorded_model="offline",
        candidate_model="openai:gpt-4o-mini",
        recorded_model_s=1.5,
        candidate_model_s=0.75,
    )
    failed = CaseReport(index=1, case_id="conv-2", conversation_id="eval-1~case2", error=HOSTILE)
    at = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    return EvalReport(
        run_id="eval-1",
        candidate=Candidate(model="openai:gpt-4o-mini", instructions="Be terse."),
        cases=[diverged, failed],
        totals=EvalTotals.of([diverged, failed]),
        started_at=at,
        finished_at=at,
    )


class Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.attrs: list[tuple[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attrs += attrs


def test_the_html_report_escapes_everything_recorded_and_needs_nothing_else() -> None:
    page = render_html(a_report())
    assert "<script" not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; [red]" in page
    assert "conv-&lt;1&gt;" in page
    parsed = Tags()
    parsed.feed(page)
    assert "script" not in parsed.tags and parsed.tags[0] == "html"
    # Self-contained: links only to its own sections, no external resource.
    assert not [v for k, v in parsed.attrs if k == "src"]
    assert {v for k, v in parsed.attrs if k == "href"} == {"#case-1", "#case-2"}


def test_the_html_report_shows_the_figures_a_person_looks_for() -> None:
    page = render_html(a_report())
    for text in (
        "2 of 2",  # diverged: one case diverged, the other could not be evaluated
        "called `multiply`, which the recording did not",
        "multiply(a=2)",
        "240 → 100 (-58%)",
        "≥$0.0000 (2 unpriced)",
        "yes → no",
        "1.50 s → 0.75 s",
        "same",
    ):
        assert text in page, text


def test_the_json_report_follows_its_schema() -> None:
    data = json.loads(render_json(a_report()))
    schema = report_schema()
    jsonschema.validate(data, schema)
    assert data["schema_version"] == 1 and [c["diverged"] for c in data["cases"]] == [True, True]
    assert data["totals"]["calls_added"] == 1
    del data["cases"][0]["turns"][1]["recorded"]
    with pytest.raises(jsonschema.ValidationError, match="'recorded' is a required property"):
        jsonschema.validate(data, schema)
    assert EvalReport.model_validate_json(render_json(a_report())) == a_report()


def test_the_terminal_report_shows_recorded_text_as_text() -> None:
    console = Console(record=True, width=140, color_system=None)
    console.print(render(a_report()))
    out = console.export_text()
    assert "[red]not markup[/red]" in out
    assert "turns that differ" in out and "called `multiply`" in out
    assert "conv-<1>" in out and "error:" in out
    assert "240→100" in out and "1 of 2 conversations diverged" not in out
    assert "2 of 2 conversations diverged" in out


def test_the_progress_bar_follows_the_progress_query() -> None:
    bar = ProgressBar(total=3)
    bar.update(EvalProgress(run_id="e", total=3, done=2, running=[2], errors=1, diverged=1))
    [task] = bar.progress.tasks
    assert (task.completed, task.total) == (2, 3)
    assert task.fields["detail"] == "1 running, 1 diverged, 1 failed"


def test_figures() -> None:
    assert figures.change(0, 0) == "±0%" and figures.change(0, 5) == "new"
    assert figures.change(200, 100) == "-50%"
    assert figures.cost(Usage(cost_usd=0.25)) == "$0.2500"
    assert figures.call(CallRef(tool="t", args={"q": "x" * 300}), limit=20).endswith("…")
    assert figures.decisions(None) == "(not reached)"
