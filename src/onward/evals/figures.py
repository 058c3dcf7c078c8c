"""The figures of an eval report as short text, shared by the terminal and HTML reports."""

from __future__ import annotations

from onward.agent.eval_contracts import CallRef, TurnDecisions
from onward.agent.messages import Usage


def cost(usage: Usage) -> str:
    """`$0.0123`, with the unpriced calls named (an unknown price is never zero)."""
    text = f"${usage.known_cost_usd:.4f}"
    if usage.cost_unknown_requests:
        text = f"≥{text} ({usage.cost_unknown_requests} unpriced)"
    return text


def change(recorded: float, candidate: float) -> str:
    """The relative change, `+12%`, `-3%`, `±0%`, or `new` from nothing."""
    if recorded == candidate:
        return "±0%"
    if recorded == 0:
        return "new"
    return f"{(candidate - recorded) / recorded * 100:+.0f}%"


def tokens(rec: Usage, cand: Usage) -> str:
    return (
        f"{rec.total_tokens:,} → {cand.total_tokens:,} "
        f"({change(rec.total_tokens, cand.total_tokens)})"
    )


def costs(rec: Usage, cand: Usage) -> str:
    unpriced = rec.cost_unknown_requests or cand.cost_unknown_requests
    # A total with unpriced calls is a lower bound: a percentage of it would mislead.
    delta = "?" if unpriced else change(rec.known_cost_usd, cand.known_cost_usd)
    return f"{cost(rec)} → {cost(cand)} ({delta})"


def seconds(recorded: float, candidate: float) -> str:
    return f"{recorded:.2f} s → {candidate:.2f} s"


def reached(recorded: bool, candidate: bool) -> str:
    def word(flag: bool) -> str:
        return "yes" if flag else "no"

    return f"{word(recorded)} → {word(candidate)}"


def call(c: CallRef, limit: int = 120) -> str:
    """`tool(a=1, b="x")`, shortened past `limit` characters."""
    args = ", ".join(f"{k}={v!r}" for k, v in c.args.items())
    text = f"{c.tool}({args})"
    return text if len(text) <= limit else text[: limit - 1] + "…"


def decisions(side: TurnDecisions | None, limit: int = 160) -> str:
    """What one side did in a turn, on one line."""
    if side is None:
        return "(not reached)"
    calls = "; ".join(call(c) for c in side.calls)
    said = side.text or ""
    said = said if len(said) <= limit else said[: limit - 1] + "…"
    parts = [p for p in (calls, f"{side.end}: {said}" if said else side.end) if p]
    return " · ".join(parts)
