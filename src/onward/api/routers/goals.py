"""`/v1/goals`: what the agent can be asked to do, and with which tools."""

from __future__ import annotations

from fastapi import APIRouter

from onward.api.deps import CatalogDep, CurrentUser
from onward.api.errors import error_responses
from onward.api.schemas import GoalInfo, GoalList, ToolInfo

router = APIRouter(prefix="/v1/goals", tags=["goals"], responses=error_responses(401))


@router.get("", response_model=GoalList, summary="List goals")
async def list_goals(user: CurrentUser, catalog: CatalogDep) -> GoalList:
    """Every startable goal with its starter prompt and tools' approval policies."""
    del user  # authentication only: goals are the same for everyone
    out: list[GoalInfo] = []
    for goal in catalog.listed():
        spec = catalog.spec(goal.name)
        out.append(
            GoalInfo(
                name=spec.name,
                description=spec.description,
                starter_prompt=spec.starter_prompt,
                tools=[
                    ToolInfo(
                        name=t.name,
                        description=t.description,
                        approval=t.approval,
                        parameters=t.parameters,
                    )
                    for t in spec.tools
                ],
            )
        )
    return GoalList(goals=out)
