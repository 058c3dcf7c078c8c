"""Comparing a candidate conversation with the recording it replayed, turn by turn.

A turn is a user message and what the agent did until the next one: the tool calls it
made, in order, and how it ended (answered, asked, refused, stopped). Both sides got
the same user messages, so turn n of one is turn n of the other. A turn *differs* when
the calls (name and arguments, in order) or the kind of ending differ; new wording of
the same kind of ending is noted (`text_changed`) but is no divergence, since any other
model words things differently.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from onward.agent.approvals import args_hash
from onward.agent.decisions import AskUser, Decision, Finish, Refuse
from onward.agent.eval_contracts import (
    CallRef,
    CaseReport,
    ChangedCall,
    TurnDecisions,
    TurnEnd,
    TurnReport,
)
from onward.agent.messages import (
    AssistantMessage,
    Message,
    NoticeMessage,
    ToolCallMessage,
    ToolResultMessage,
    Usage,
    UserMessage,
)

NOT_EXECUTED_PREFIX = "not executed: this eval replays a recording"
"""How a replayed conversation's unmatched tool call is answered (`orchestration.replayed`)."""


@dataclass
class Side:
    """One side of the comparison, as read from a recording or a candidate."""

    transcript: Sequence[Message]
    decisions: Sequence[Decision]
    reached: bool
    answer: str | None
    usage: Usage
    model: str | None
    model_s: float


def _terminal(decisions: Sequence[Decision]) -> list[tuple[TurnEnd, str]]:
    out: list[tuple[TurnEnd, str]] = []
    for d in decisions:
        if isinstance(d, AskUser):
            out.append(("asked", d.text))
        elif isinstance(d, Finish):
            out.append(("answered", d.answer))
        elif isinstance(d, Refuse):
            out.append(("refused", d.text))
    return out


def split_turns(
    transcript: Sequence[Message], decisions: Sequence[Decision]
) -> list[tuple[str, TurnDecisions]]:
    """The turns of `transcript`: each user message with what the agent did after it.

    A turn's ending is its last assistant text that no tool call follows; its kind
    comes from the model's decisions (matched in order by text: a decision the
    workflow turned down, such as a draft a reviewer rejected, said nothing).
    """
    endings = _terminal(decisions)
    at = 0
    turns: list[tuple[str, TurnDecisions]] = []
    notices: list[str] = []
    for i, m in enumerate(transcript):
        if isinstance(m, UserMessage):
            _close(turns, notices)
            turns.append((m.text, TurnDecisions(end="stopped")))
            notices = []
        elif not turns:
            continue  # before the first message: a fork's notice
        elif isinstance(m, ToolCallMessage):
            turns[-1][1].calls.append(CallRef(tool=m.tool, args=m.args))
        elif isinstance(m, NoticeMessage):
            notices.append(m.text)
        elif isinstance(m, AssistantMessage):
            following = transcript[i + 1] if i + 1 < len(transcript) else None
            if isinstance(following, ToolCallMessage):
                continue  # said while calling tools: part of that step
            end: TurnEnd = "replied"
            for j in range(at, len(endings)):
                if endings[j][1] == m.text:
                    end, at = endings[j][0], j + 1
                    break
            turns[-1] = (turns[-1][0], turns[-1][1].model_copy(update={"end": end, "text": m.text}))
    _close(turns, notices)
    return turns


def _close(turns: list[tuple[str, TurnDecisions]], notices: list[str]) -> None:
    """A turn that ended without a reply says why: its last notice."""
    if turns and turns[-1][1].end == "stopped" and turns[-1][1].text is None and notices:
        turns[-1][1].text = notices[-1]


def _key(call: CallRef) -> tuple[str, str]:
    return call.tool, args_hash(call.args)


def diff_calls(
    recorded: Sequence[CallRef], candidate: Sequence[CallRef]
) -> tuple[list[CallRef], list[CallRef], list[ChangedCall]]:
    """(added, removed, changed): identical calls pair first, then the same tool with
    other arguments counts as changed; what is left was added or removed."""
    left = list(recorded)
    unmatched: list[CallRef] = []
    for call in candidate:
        same = next((r for r in left if _key(r) == _key(call)), None)
        if same is None:
            unmatched.append(call)
        else:
            left.remove(same)
    added: list[CallRef] = []
    changed: list[ChangedCall] = []
    for call in unmatched:
        other = next((r for r in left if r.tool == call.tool), None)
        if other is None:
            added.append(call)
        else:
            left.remove(other)
            changed.append(
                ChangedCall(tool=call.tool, recorded_args=other.args, candidate_args=call.args)
            )
    return added, left, changed


def compare_turn(
    turn: int, user: str, recorded: TurnDecisions, candidate: TurnDecisions | None
) -> TurnReport:
    if candidate is None:
        return TurnReport(
            turn=turn,
            user=user,
            recorded=recorded,
            candidate=None,
            differs=True,
            reasons=["the candidate conversation ended before this turn"],
            removed=list(recorded.calls),
        )
    added, removed, changed = diff_calls(recorded.calls, candidate.calls)
    reasons = [f"`{c.tool}` called with other arguments" for c in changed]
    reasons += [f"called `{c.tool}`, which the recording did not" for c in added]
    reasons += [f"did not call `{c.tool}`, which the recording did" for c in removed]
    same_calls = [_key(c) for c in recorded.calls] == [_key(c) for c in candidate.calls]
    if not same_calls and not reasons:
        reasons.append("the same tool calls in another order")
    if candidate.end != recorded.end:
        reasons.append(f"{candidate.end} where the recording {recorded.end}")
    return TurnReport(
        turn=turn,
        user=user,
        recorded=recorded,
        candidate=candidate,
        differs=bool(reasons),
        reasons=reasons,
        added=added,
        removed=removed,
        changed=changed,
        text_changed=candidate.text != recorded.text,
    )


def not_executed(transcript: Sequence[Message]) -> int:
    """Tool calls the replay answered with "not executed" (no recorded match)."""
    return sum(
        1
        for m in transcript
        if isinstance(m, ToolResultMessage) and (m.error or "").startswith(NOT_EXECUTED_PREFIX)
    )


def compare_case(
    *,
    index: int,
    case_id: str,
    conversation_id: str,
    goal: str,
    recorded: Side,
    candidate: Side,
    side_effects: int,
    elapsed_s: float,
) -> CaseReport:
    """The report of one case: every turn of the recording against the candidate's."""
    rec_turns = split_turns(recorded.transcript, recorded.decisions)
    cand_turns = split_turns(candidate.transcript, candidate.decisions)
    turns = [
        compare_turn(n, user, rec, cand_turns[n - 1][1] if n <= len(cand_turns) else None)
        for n, (user, rec) in enumerate(rec_turns, 1)
    ]
    return CaseReport(
        index=index,
        case_id=case_id,
        conversation_id=conversation_id,
        goal=goal,
        turns=turns,
        diverging_turns=[t.turn for t in turns if t.differs],
        calls_added=sum(len(t.added) for t in turns),
        calls_removed=sum(len(t.removed) for t in turns),
        calls_changed=sum(len(t.changed) for t in turns),
        not_executed=not_executed(candidate.transcript),
        side_effects=side_effects,
        recorded_reached=recorded.reached,
        candidate_reached=candidate.reached,
        recorded_answer=recorded.answer,
        candidate_answer=candidate.answer,
        recorded_usage=recorded.usage,
        candidate_usage=candidate.usage,
        recorded_model=recorded.model,
        candidate_model=candidate.model,
        recorded_model_s=recorded.model_s,
        candidate_model_s=candidate.model_s,
        candidate_elapsed_s=elapsed_s,
    )
