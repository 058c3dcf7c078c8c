"""Replay every saved history: workflow code changes must stay deterministic."""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from onward.agent.workflow import ConversationWorkflow
from onward.client.connect import data_converter
from onward.config import Settings, WorkflowSandbox
from onward.worker import workflow_runner

HISTORIES = sorted(Path(__file__).parent.glob("*.json"))
TEXTS = {p: p.read_text() for p in HISTORIES}


def test_histories_are_saved() -> None:
    assert len(HISTORIES) >= 3, "tests/replay lost its saved histories"


# Both ways a worker runs workflow code: `off` (what `auto` picks for onward's own
# goals) and Temporal's sandbox (`shared`, picked when user graph code runs inside).
@pytest.mark.parametrize("sandbox", ["off", "shared"])
@pytest.mark.parametrize("path", HISTORIES, ids=[p.stem for p in HISTORIES])
async def test_replay(path: Path, sandbox: WorkflowSandbox, tmp_path: Path) -> None:
    settings = Settings(_env_file=None, data_dir=tmp_path, workflow_sandbox=sandbox)  # type: ignore[call-arg]
    replayer = Replayer(
        workflows=[ConversationWorkflow],
        data_converter=data_converter(settings),
        workflow_runner=workflow_runner(settings),
    )
    history = WorkflowHistory.from_json(path.stem, TEXTS[path])
    result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
    assert result.replay_failure is None, f"{path.name}: {result.replay_failure}"
