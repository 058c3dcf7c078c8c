"""A conversation's status: published on every change, indexed at rest points.

The status (thinking, running tools, waiting for the user, ...) goes to the event
stream each time it changes; where a conversation rests it is also written to the
conversation's search attributes, so listing conversations by goal, owner, status or
cost is a Temporal visibility query. Each upsert is a history event, so it happens
only at rest and only when something indexed changed.
"""

from __future__ import annotations

from temporalio import workflow
from temporalio.common import SearchAttributeKey

from onward.agent.contracts import ConversationState, Status
from onward.agent.publisher import Publisher

RESTING_STATUSES = ("waiting_for_user", "waiting_for_approval", "budget_exhausted", "ended")
SA_GOAL = SearchAttributeKey.for_keyword("OnwardGoal")
SA_OWNER = SearchAttributeKey.for_keyword("OnwardOwner")
SA_STATUS = SearchAttributeKey.for_keyword("OnwardStatus")
SA_COST = SearchAttributeKey.for_float("OnwardCostUsd")
SEARCH_ATTRIBUTES_PATCH = "onward-search-attributes"
"""Histories recorded before indexing existed replay without the upserts."""


class StatusBoard:
    """The current status of one conversation run."""

    def __init__(self, state: ConversationState, out: Publisher) -> None:
        self._s = state
        self._out = out
        self.status: Status = "waiting_for_user"
        self.detail: str | None = None
        self._indexed: tuple[str, str, str, float] | None = None

    def set(self, status: Status, detail: str | None = None) -> None:
        if self._s.ended:
            status = "ended"
        self.status = status
        self.detail = detail
        self._out.status(status, detail)
        if status in RESTING_STATUSES:
            self._index(status)

    def _index(self, status: Status) -> None:
        s = self._s
        if not s.options.search_attributes:
            return
        indexed = (s.goal.name, s.owner, status, round(s.usage.known_cost_usd, 6))
        if indexed == self._indexed:
            return
        self._indexed = indexed
        if not workflow.patched(SEARCH_ATTRIBUTES_PATCH):
            return
        workflow.upsert_search_attributes(
            [
                SA_GOAL.value_set(s.goal.name),
                SA_OWNER.value_set(s.owner),
                SA_STATUS.value_set(status),
                SA_COST.value_set(s.usage.known_cost_usd),
            ]
        )
