"""Fixtures for the bundled goals' tool tests: a private ledger directory per test."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from onward.config import get_settings
from onward.examples.ledger import Ledger, ledger_for
from onward.tools import ToolContext

_calls = itertools.count(1)


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Point `get_settings()` (and so every tool's ledger) at this test's tmp dir."""
    monkeypatch.setenv("ONWARD_DATA_DIR", str(tmp_path))
    get_settings.cache_clear()
    yield tmp_path
    # Undo the env first, so nothing can cache settings that point at a dead dir.
    monkeypatch.undo()
    get_settings.cache_clear()


@pytest.fixture
def ledger(data_dir: Path) -> Ledger:
    return ledger_for(get_settings())


ContextFactory = Callable[..., ToolContext]


@pytest.fixture
def make_ctx() -> ContextFactory:
    """`make_ctx()` is a fresh call; `make_ctx("c1", attempt=2)` retries call c1."""

    def make(call_id: str | None = None, attempt: int = 1) -> ToolContext:
        return ToolContext(
            conversation_id="conv-unit",
            call_id=call_id or f"call-{next(_calls)}",
            attempt=attempt,
        )

    return make
