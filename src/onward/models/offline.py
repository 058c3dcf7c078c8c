"""`OfflineModel`: a deterministic assistant that drives a goal with no network.

It is what runs when no API key is configured. It reads what any model is given —
the goal's tools (descriptions, JSON schemas with their enums, titled choices and
examples, declared `follow_ups`) and the transcript — and nothing else, so the same
transcript always gives the same decision (replays and retries agree). It has no
branch for any particular goal:

- It takes values out of sentences ("I'm sorry. I'd like to depart from Austin, TX"
  gives where the trip starts), picks from what it listed ("the first one", "the
  cheapest", a name), and understands yes, no, thanks and hesitation.
- It presents results in words, says when nothing was found (offering the tool's
  alternatives), asks in words, explains a failed call and carries on.
- It judges on every turn whether a message belongs to the goal; off-topic text is
  refused (with `check_topic`) and never becomes a tool argument.
- After an answer the conversation goes on: a new request starts over, a question
  about earlier results is answered from them.

The modules: `_offline_text` (language), `_offline_args` (parameters and values),
`_offline_topic`, `_offline_state` and `_offline_reader` (the transcript),
`_offline_fill`, `_offline_flow` and `_offline_replies` (deciding and wording), and
`_offline_team` for planners, routers and reviewers.
"""

from __future__ import annotations

from collections.abc import Sequence

from onward.agent.decisions import AskUser, Decision, Finish, GuardrailVerdict, Refuse
from onward.agent.messages import Message, Usage, UserMessage
from onward.agent.specs import GoalSpec
from onward.models._offline_flow import respond
from onward.models._offline_reader import read
from onward.models._offline_state import Plan, State
from onward.models._offline_team import is_team_message, review_draft, team_decision
from onward.models.base import (
    DeltaCallback,
    GuardrailRequest,
    GuardrailResponse,
    ModelRequest,
    ModelResponse,
)


class OfflineModel:
    """The built-in offline model (see the module docstring). Free and deterministic."""

    @property
    def name(self) -> str:
        return "offline"

    @property
    def offline(self) -> bool:
        return True

    async def decide(
        self, request: ModelRequest, on_delta: DeltaCallback | None = None
    ) -> ModelResponse:
        """The next step for the goal, from the transcript alone."""
        decision = plan_next(
            request.goal, request.messages, review=request.review, judge=request.check_topic
        )
        if isinstance(decision, AskUser | Finish | Refuse):
            out_text = decision.answer if isinstance(decision, Finish) else decision.text
            if on_delta is not None:
                for i, word in enumerate(out_text.split(" ")):
                    await on_delta(word if i == 0 else " " + word)
        else:
            out_text = decision.model_dump_json()
        usage = _usage(_prompt_text(request.goal, request.messages), out_text)
        return ModelResponse(decision=decision, usage=usage, model_name=self.name)

    async def check_guardrail(self, request: GuardrailRequest) -> GuardrailResponse:
        """The same judgement as `decide` makes with `check_topic` (for conversations
        started before the guardrail became part of the decision)."""
        verdict = check_topic(request.goal, request.messages, request.text)
        usage = _usage(_prompt_text(request.goal, request.messages), verdict.reply or "ok")
        return GuardrailResponse(verdict=verdict, usage=usage)


def _planner(st: State, judge: bool) -> Plan:
    return respond(st, judge)


def _state(goal: GoalSpec, messages: Sequence[Message]) -> State:
    # A router's handoff that brought the conversation here is no work of this agent.
    return read(goal, [m for m in messages if not is_team_message(goal, m)], _planner)


def plan_next(
    goal: GoalSpec,
    messages: Sequence[Message],
    *,
    review: bool = False,
    judge: bool = False,
) -> Decision:
    """The offline model's decision for `goal` after `messages` (a verdict on the last
    assistant message when `review`; `judge`: a `Refuse` is allowed, as the request's
    `check_topic` says)."""
    if review:
        return review_draft(messages)
    st = _state(goal, messages)
    if judge and st.fresh and st.latest is not None and not st.latest.on_topic:
        return respond(st, True).decision
    team = team_decision(goal, messages, review=False)
    if team is not None:
        return team
    return respond(st, judge).decision


def check_topic(goal: GoalSpec, messages: Sequence[Message], text: str) -> GuardrailVerdict:
    """Whether `text`, sent after `messages`, belongs to `goal` (the judgement every
    decision makes), with the redirect the agent would give if not."""
    st = _state(goal, [*messages, UserMessage(text=text)])
    if st.latest is None or st.latest.on_topic:
        return GuardrailVerdict(allowed=True)
    decision = respond(st, True).decision
    reply = decision.text if isinstance(decision, Refuse | AskUser) else None
    return GuardrailVerdict(allowed=False, reply=reply)


def _prompt_text(goal: GoalSpec, messages: Sequence[Message]) -> str:
    return goal.instructions + " " + " ".join(m.model_dump_json() for m in messages)


def _usage(prompt: str, output: str) -> Usage:
    # Free and local: a known price of zero, with word counts standing in for tokens.
    return Usage(
        requests=1,
        input_tokens=len(prompt.split()),
        output_tokens=len(output.split()),
        cost_usd=0.0,
    )
