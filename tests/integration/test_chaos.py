"""The chaos run CI executes: 10 conversations, 5 worker SIGKILLs, nothing lost or doubled."""

from __future__ import annotations

import pytest

from onward.chaos import run_chaos

pytestmark = pytest.mark.integration


@pytest.mark.timeout(600)
async def test_worker_kills_change_nothing() -> None:
    report = await run_chaos(conversations=10, kills=5, seed=7, timeout_s=400)
    assert report.differences == []
    assert report.kills == 5
    assert report.completed == report.identical == 10
    assert report.duplicated_effects == report.lost_effects == 0
    assert report.ok
