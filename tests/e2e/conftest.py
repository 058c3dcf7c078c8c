"""Fixtures of the browser tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from onward.config import Settings, get_settings
from tests.conftest import make_settings


@pytest.fixture
def data_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    """Settings in a fresh data dir that tools (which read `get_settings()`) share."""
    monkeypatch.setenv("ONWARD_DATA_DIR", str(tmp_path))
    get_settings.cache_clear()
    yield make_settings(tmp_path)
    monkeypatch.delenv("ONWARD_DATA_DIR")
    get_settings.cache_clear()
