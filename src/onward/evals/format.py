"""The eval-set file: recorded conversations, self-contained, in versioned JSON.

A case holds everything a replay and its comparison need, so a set can be kept in a
repository and run anywhere: the goal spec the conversation ran with, its whole
transcript with tool results inline, the model's decisions in order (which tell an
answer from a question), its usage, the model's name and its outcome.

```json
{"version": 1, "name": "travel", "cases": [{"id": "conv-…", "goal": {…},
  "transcript": [{"kind": "user", "text": "…"}, …], "decisions": [{"kind": "ask", …}],
  "usage": {…}, "model_name": "offline", "reached": true, "answer": "…"}]}
```
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any, cast

from pydantic import BaseModel, Field, ValidationError

from onward.agent.decisions import Decision
from onward.agent.messages import Message, Usage, UserMessage
from onward.agent.specs import GoalSpec
from onward.exceptions import EvalSetError

FORMAT_VERSION = 1


class EvalCase(BaseModel):
    """One recorded conversation."""

    id: str = Field(min_length=1)
    """The recorded conversation's id."""
    goal: GoalSpec
    transcript: list[Message]
    """The whole transcript; tool results inline (`content`), never by reference."""
    decisions: list[Decision] = Field(default_factory=list[Decision])
    """The model's decisions in order, as its history recorded them."""
    usage: Usage = Field(default_factory=Usage)
    model_name: str | None = None
    reached: bool = False
    """Whether the recording answered the goal."""
    answer: str | None = None
    model_seconds: float = Field(default=0.0, ge=0)
    """Seconds spent in model calls (each scheduled to closed), sub-agents included."""
    recorded_at: datetime | None = None

    def user_messages(self) -> list[str]:
        return [m.text for m in self.transcript if isinstance(m, UserMessage)]


class EvalSet(BaseModel):
    """A file of recorded conversations (`onward eval export` writes one)."""

    version: int = FORMAT_VERSION
    name: str = "eval set"
    description: str = ""
    cases: list[EvalCase] = Field(default_factory=list[EvalCase])


def parse_eval_set(text: str, source: str = "the eval set") -> EvalSet:
    """Read an eval set from JSON text.

    Raises:
        EvalSetError: Not JSON, a version this onward does not read, or a case that
            does not match the format (the first problems are named).
    """
    try:
        raw: Any = json.loads(text)
    except json.JSONDecodeError as exc:
        raise EvalSetError(f"{source} is not JSON: {exc}") from exc
    if not isinstance(raw, dict):
        raise EvalSetError(f"{source} must be a JSON object with `version` and `cases`")
    version = cast(dict[str, Any], raw).get("version")
    if version != FORMAT_VERSION:
        raise EvalSetError(
            f"{source} has format version {version!r}; this onward reads version "
            f"{FORMAT_VERSION} (export the conversations again with `onward eval export`)"
        )
    try:
        parsed = EvalSet.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()[:5]
        )
        raise EvalSetError(f"{source} does not match the eval-set format: {problems}") from exc
    if not parsed.cases:
        raise EvalSetError(f"{source} has no cases")
    for case in parsed.cases:
        if not case.user_messages():
            raise EvalSetError(f"case `{case.id}` of {source} has no user message to replay")
    return parsed


def load_eval_set(path: Path) -> EvalSet:
    """Read an eval-set file (see `parse_eval_set`)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise EvalSetError(f"cannot read the eval set {str(path)!r}: {exc}") from exc
    return parse_eval_set(text, f"`{path}`")


def save_eval_set(eval_set: EvalSet, path: Path) -> None:
    """Write `eval_set` as indented JSON (stable for review in a repository)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(eval_set.model_dump_json(indent=1) + "\n", "utf-8")
