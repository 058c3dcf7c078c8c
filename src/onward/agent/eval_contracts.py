"""Inputs, outputs and the report of the eval workflow and its two activities.

An eval replays recorded conversations against a candidate (another model, other
instructions, the goal as registered now). The shapes live here, beside the other
contracts, because the workflow, the activities and the client all build them; nothing
here does I/O.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from onward.agent.contracts import ConversationOptions, ConversationResult, EvalScript
from onward.agent.messages import Usage
from onward.agent.specs import GoalSpec

EVAL_WORKFLOW_NAME = "EvalWorkflow"
QUERY_EVAL_PROGRESS = "progress"
ACTIVITY_EVAL_PREPARE = "onward.eval.prepare"
ACTIVITY_EVAL_COMPARE = "onward.eval.compare"
REPORT_SCHEMA_VERSION = 1

TurnEnd = Literal["answered", "asked", "refused", "replied", "stopped"]
"""How an agent ended a turn: `answered` the goal (a finish), `asked` the user,
`refused` an off-topic message, `replied` with text of no known decision (a history
recorded before decisions were kept), or `stopped` without a word (a model failure, a
step limit, a budget stop)."""


class Candidate(BaseModel):
    """What an eval tries instead of the recording; unset fields keep the recorded."""

    model: str | None = None
    """A model id (`offline`, `openai:gpt-4o-mini`, ...) built with the workers' keys."""
    instructions: str | None = None
    """Replacement instructions (system prompt) for the goal."""
    goal: str | None = None
    """Use the goal registered under this name now instead of the recorded spec."""

    def describe(self) -> str:
        """One line for a report header."""
        parts = [
            f"model `{self.model}`" if self.model else "the recorded model",
            f"goal `{self.goal}` as registered now" if self.goal else "the recorded goal",
        ]
        if self.instructions is not None:
            parts.append(f"new instructions ({len(self.instructions)} characters)")
        return ", ".join(parts)


class EvalCaseRef(BaseModel):
    """One recorded conversation of the set, by its blob ref in the transcript store."""

    ref: str
    label: str
    """The recorded conversation's id, for reports."""


class EvalCarried(BaseModel):
    """What a run of the eval carries over continue-as-new."""

    done: list[CaseReport]
    next_index: int = Field(ge=0)
    started_at: datetime
    runs: int = Field(ge=1)


class EvalRun(BaseModel):
    """Input of `EvalWorkflow`. Cases are references: history never holds a transcript."""

    run_id: str = Field(min_length=1, max_length=200)
    """The workflow id; candidate conversations are `<run_id>~case<n>`."""
    candidate: Candidate = Field(default_factory=Candidate)
    cases: list[EvalCaseRef] = Field(min_length=1)
    options: ConversationOptions = Field(default_factory=ConversationOptions)
    """Options of the candidate conversations (task queues, timeouts); the eval script,
    model and an unlimited budget are set per case."""
    owner: str = "local"
    concurrency: int = Field(default=4, ge=1, le=1000)
    """Candidate conversations at once (the llm queue's cap applies to their calls)."""
    cases_per_run: int = Field(default=100, ge=1)
    """Cases started before the eval continues as new (bounded history)."""
    carried: EvalCarried | None = None


class PrepareCase(BaseModel):
    """Input of `onward.eval.prepare`."""

    run_id: str
    index: int
    case: EvalCaseRef
    conversation_id: str
    """The candidate conversation: recorded results are stored as its blobs."""
    candidate: Candidate


class PreparedCase(BaseModel):
    """What a candidate conversation starts with."""

    goal: GoalSpec
    first_message: str
    script: EvalScript


class CompareCase(BaseModel):
    """Input of `onward.eval.compare`."""

    run_id: str
    index: int
    case: EvalCaseRef
    conversation_id: str
    result: ConversationResult | None = None
    error: str | None = None
    """Why the candidate conversation has no result (it failed)."""


class CallRef(BaseModel):
    tool: str
    args: dict[str, Any]


class ChangedCall(BaseModel):
    """The same tool called with other arguments."""

    tool: str
    recorded_args: dict[str, Any]
    candidate_args: dict[str, Any]


class TurnDecisions(BaseModel):
    """What one side did in one turn: tool calls in order and how the turn ended."""

    calls: list[CallRef] = Field(default_factory=list[CallRef])
    end: TurnEnd
    text: str | None = None


class TurnReport(BaseModel):
    """One turn (a user message and what followed) of the recording and the candidate."""

    turn: int
    """1-based."""
    user: str
    recorded: TurnDecisions
    candidate: TurnDecisions | None
    """None: the candidate conversation ended before this turn."""
    differs: bool
    """The tool calls (names and arguments, in order) or the kind of ending differ.
    A different wording of the same kind of ending is `text_changed` only."""
    reasons: list[str] = Field(default_factory=list[str])
    added: list[CallRef] = Field(default_factory=list[CallRef])
    removed: list[CallRef] = Field(default_factory=list[CallRef])
    changed: list[ChangedCall] = Field(default_factory=list[ChangedCall])
    text_changed: bool = False


class CaseReport(BaseModel):
    """One recorded conversation against the candidate."""

    index: int
    case_id: str
    conversation_id: str
    goal: str = ""
    error: str | None = None
    """Why the case could not be evaluated (its figures are then empty)."""
    turns: list[TurnReport] = Field(default_factory=list[TurnReport])
    diverging_turns: list[int] = Field(default_factory=list[int])
    calls_added: int = 0
    calls_removed: int = 0
    calls_changed: int = 0
    not_executed: int = 0
    """Candidate tool calls with no recorded match: not run, the model was told."""
    side_effects: int = 0
    """Tool activities that ran in the candidate's histories (an eval runs none)."""
    recorded_reached: bool = False
    candidate_reached: bool = False
    recorded_answer: str | None = None
    candidate_answer: str | None = None
    recorded_usage: Usage = Field(default_factory=Usage)
    candidate_usage: Usage = Field(default_factory=Usage)
    recorded_model: str | None = None
    candidate_model: str | None = None
    recorded_model_s: float = 0.0
    """Seconds spent in model calls (scheduled to closed) in the recording."""
    candidate_model_s: float = 0.0
    candidate_elapsed_s: float = 0.0
    """The candidate conversation's start to close."""

    @property
    def diverged(self) -> bool:
        return self.error is not None or bool(self.diverging_turns)


class EvalTotals(BaseModel):
    cases: int = 0
    errors: int = 0
    diverged_cases: int = 0
    decisions_differ: int = 0
    """Turns whose decisions differ, over all cases."""
    calls_added: int = 0
    calls_removed: int = 0
    calls_changed: int = 0
    not_executed: int = 0
    side_effects: int = 0
    recorded_reached: int = 0
    candidate_reached: int = 0
    recorded_usage: Usage = Field(default_factory=Usage)
    candidate_usage: Usage = Field(default_factory=Usage)
    recorded_model_s: float = 0.0
    candidate_model_s: float = 0.0
    candidate_elapsed_s: float = 0.0

    @classmethod
    def of(cls, cases: list[CaseReport]) -> EvalTotals:
        totals = cls(cases=len(cases))
        for c in cases:
            totals.errors += c.error is not None
            totals.diverged_cases += c.diverged
            totals.decisions_differ += len(c.diverging_turns)
            totals.calls_added += c.calls_added
            totals.calls_removed += c.calls_removed
            totals.calls_changed += c.calls_changed
            totals.not_executed += c.not_executed
            totals.side_effects += c.side_effects
            totals.recorded_reached += c.recorded_reached
            totals.candidate_reached += c.candidate_reached
            totals.recorded_usage = totals.recorded_usage + c.recorded_usage
            totals.candidate_usage = totals.candidate_usage + c.candidate_usage
            totals.recorded_model_s += c.recorded_model_s
            totals.candidate_model_s += c.candidate_model_s
            totals.candidate_elapsed_s += c.candidate_elapsed_s
        for name in ("recorded_model_s", "candidate_model_s", "candidate_elapsed_s"):
            setattr(totals, name, round(getattr(totals, name), 3))
        return totals


class EvalReport(BaseModel):
    """The eval workflow's result: per conversation and in total."""

    schema_version: int = REPORT_SCHEMA_VERSION
    run_id: str
    candidate: Candidate
    cases: list[CaseReport]
    totals: EvalTotals
    started_at: datetime
    finished_at: datetime
    runs: int = 1
    """Workflow runs the eval took (it continues as new every `cases_per_run`)."""


class EvalProgress(BaseModel):
    """The `progress` query's answer."""

    run_id: str
    total: int
    done: int
    running: list[int]
    """Indexes of the cases whose candidate conversation is under way."""
    errors: int
    diverged: int


EvalCarried.model_rebuild()
