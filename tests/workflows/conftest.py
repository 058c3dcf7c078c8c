"""Registers the small test goals every workflow test may use; shared fixtures."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from onward.config import get_settings
from onward.examples.ledger import Ledger, ledger_for
from tests.workflows import team_goals, toolbox

assert toolbox.MATH.name == "test-math"
assert team_goals.PLANNER.name == "test-planner"


@pytest.fixture
def ledger(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Ledger]:
    """The ledger tools write to, in a data dir of the test's own."""
    monkeypatch.setenv("ONWARD_DATA_DIR", str(tmp_path))
    get_settings.cache_clear()
    yield ledger_for(get_settings())
    monkeypatch.undo()
    get_settings.cache_clear()
