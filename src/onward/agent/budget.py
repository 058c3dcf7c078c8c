"""Budget arithmetic: pure functions over usage and limits."""

from __future__ import annotations

from onward.agent.contracts import Budget, RaiseBudget
from onward.agent.messages import Usage


def exhausted(usage: Usage, budget: Budget) -> str | None:
    """A sentence saying which limit is reached, or None while within budget."""
    if budget.max_tokens is not None and usage.total_tokens >= budget.max_tokens:
        return f"token budget reached ({usage.total_tokens} of {budget.max_tokens} tokens)"
    if budget.max_cost_usd is not None and usage.known_cost_usd >= budget.max_cost_usd:
        return f"cost budget reached (${usage.known_cost_usd:.4f} of ${budget.max_cost_usd:.4f})"
    return None


def next_call_exceeds(usage: Usage, last_call: Usage, budget: Budget) -> str | None:
    """For a sub-agent, which must not pass its share: a sentence when one more call
    the size of the last one would reach the limit, else None."""
    if exhausted(usage + last_call, budget) is None:
        return None
    return (
        f"its share of the budget would be passed by one more model call "
        f"(used {usage.total_tokens} tokens, ${usage.known_cost_usd:.4f})"
    )


def raise_refusal(budget: Budget, request: RaiseBudget) -> str | None:
    """Why a raise is refused, or None. A raise must name a limit and not lower one."""
    if request.max_tokens is None and request.max_cost_usd is None:
        return "name a new `max_tokens` or `max_cost_usd`"
    if (
        request.max_tokens is not None
        and budget.max_tokens is not None
        and request.max_tokens < budget.max_tokens
    ):
        return f"`max_tokens` {request.max_tokens} is lower than the current {budget.max_tokens}"
    if (
        request.max_cost_usd is not None
        and budget.max_cost_usd is not None
        and request.max_cost_usd < budget.max_cost_usd
    ):
        return (
            f"`max_cost_usd` {request.max_cost_usd} is lower than the current {budget.max_cost_usd}"
        )
    return None


def raised(budget: Budget, request: RaiseBudget) -> Budget:
    return Budget(
        max_tokens=request.max_tokens if request.max_tokens is not None else budget.max_tokens,
        max_cost_usd=(
            request.max_cost_usd if request.max_cost_usd is not None else budget.max_cost_usd
        ),
    )


def share(budget: Budget, usage: Usage, parts: int) -> Budget:
    """An equal part of what is left of `budget`, for one of `parts` sub-agents.

    The parts add up to no more than what is left, so children together cannot spend
    past the parent's limit (each is checked before every model call it makes).
    """
    parts = max(1, parts)
    tokens = None
    if budget.max_tokens is not None:
        tokens = max(1, (budget.max_tokens - usage.total_tokens) // parts)
    cost = None
    if budget.max_cost_usd is not None:
        cost = max(1e-9, (budget.max_cost_usd - usage.known_cost_usd) / parts)
    return Budget(max_tokens=tokens, max_cost_usd=cost)
