"""The chaos runs CI executes: 10 conversations with 5 worker SIGKILLs, and 40 with 8
API SIGKILLs while clients create, send and approve; nothing lost or doubled."""

from __future__ import annotations

import pytest

from onward.examples.chaos.api import run_api_chaos
from onward.examples.chaos.worker import run_chaos

pytestmark = pytest.mark.integration


@pytest.mark.timeout(600)
async def test_worker_kills_change_nothing() -> None:
    report = await run_chaos(conversations=10, kills=5, seed=7, timeout_s=400)
    assert report.differences == []
    assert report.kills == 5
    assert report.completed == report.identical == 10
    assert report.duplicated_effects == report.lost_effects == 0
    assert report.ok


@pytest.mark.timeout(900)
async def test_api_kills_lose_no_acknowledged_input_and_double_nothing() -> None:
    report = await run_api_chaos(conversations=40, kills=8, seed=11, timeout_s=500)
    assert report.differences == []
    assert report.kills == 8
    assert report.acknowledged >= 40 * 2  # every create, and the messages after it
    assert report.lost_inputs == report.lost_effects == report.doubled_effects == 0
    assert report.identical == 40
    assert report.ok
