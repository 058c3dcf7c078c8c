"""`/v1/goals`: what the agent can be asked to do, and with which tools."""

from __future__ import annotations

from fastapi import APIRouter

from onward.api.deps import CurrentUser, SettingsDep
from onward.api.errors import error_responses
from onward.api.schemas import GoalInfo, GoalList, ToolInfo
from onward.goals.registry import load_goals

router = APIRouter(prefix="/v1/goals", tags=["goals"], responses=error_responses(401))


@router.get("", response_model=GoalList, summary="List goals")
async def list_goals(user: CurrentUser, settings: SettingsDep) -> GoalList:
    """Every registered goal with its starter prompt and tools' approval policies."""
    del user  # authentication only: goals are the same for everyone
    goals = load_goals(settings.goal_modules)
    out: list[GoalInfo] = []
    for name in sorted(goals):
        if not goals[name].listed:
            continue
        spec = goals[name].spec()
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
