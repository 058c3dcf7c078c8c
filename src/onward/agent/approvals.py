"""Approval binding: a decision is valid for one call id and one exact set of args."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from onward.agent.contracts import DecideApproval, PendingApproval


def args_hash(args: dict[str, Any]) -> str:
    """Stable hash of tool arguments (key order and whitespace do not matter)."""
    canonical = json.dumps(args, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def refusal(
    pending: dict[str, PendingApproval],
    decision: DecideApproval,
    closed: dict[str, str] | None = None,
) -> str | None:
    """Why `decision` cannot be accepted, or None when it matches a pending approval.
    `closed` maps recently closed call ids to how they closed."""
    approval = pending.get(decision.call_id)
    if approval is None and closed and decision.call_id in closed:
        return f"already decided: {closed[decision.call_id]}"
    if approval is None:
        waiting = ", ".join(sorted(pending)) or "none"
        return (
            f"no approval is pending for call `{decision.call_id}` (stale or already "
            f"decided); pending: {waiting}"
        )
    if decision.args_hash != approval.args_hash:
        return (
            f"args hash mismatch for call `{decision.call_id}`: the arguments you "
            "approved are not the ones waiting; reload and decide again"
        )
    return None
