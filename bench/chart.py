"""One PNG with a panel per measurement, each with its target drawn in."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

Results = dict[str, Any]
PHASES = ("activity_dispatch", "activity_run", "workflow_task_dispatch", "workflow_task_run")


def _short(variant: str) -> str:
    """`stock server, local-activity tool` -> `stock srv\nlocal tool`."""
    server, _, tool = variant.partition(", ")
    server = server.replace(" server", " srv").replace(" (", "\n(")
    return server + "\n" + tool.replace("-activity", "")


def _latency(ax: Any, r: Results) -> None:
    bars: list[tuple[str, Any, Any]] = [
        ("asyncio", r["asyncio"].get("p50_ms"), r["asyncio"].get("p95_ms")),
        ("langgraph\n+sqlite", r["langgraph"].get("p50_ms"), r["langgraph"].get("p95_ms")),
    ]
    for label, v in r["onward"].get("latency_variants", {}).items():
        bars.append((_short(label), v.get("p50_ms"), v.get("p95_ms")))
    labels = [b[0] for b in bars]
    xs = range(len(bars))
    ax.bar([x - 0.2 for x in xs], [b[1] or 0 for b in bars], 0.4, label="p50")
    ax.bar([x + 0.2 for x in xs], [b[2] or 0 for b in bars], 0.4, label="p95")
    ax.axhline(15, color="red", linestyle="--", label="target p50 15 ms")
    ax.set_yscale("log")
    ax.set_xticks(list(xs), labels, fontsize=6)
    ax.set_ylabel("ms per step (decide + tool)")
    ax.set_title("Per-step orchestration overhead")
    ax.legend(fontsize=6)


def _breakdown(ax: Any, r: Results) -> None:
    variants = {k: v for k, v in r["onward"].get("latency_variants", {}).items() if v}
    labels = [_short(k) for k in variants]
    bottom = [0.0] * len(variants)
    for phase in (*PHASES, "other"):
        values = [
            float(v.get("breakdown_ms_per_step", {}).get(f"{phase}_ms", 0))
            for v in variants.values()
        ]
        ax.bar(labels, values, bottom=bottom, label=phase.replace("_", " "))
        bottom = [b + v for b, v in zip(bottom, values, strict=True)]
    ax.set_ylabel("ms per step")
    ax.set_title("Where onward's step goes (server timestamps)")
    ax.tick_params(axis="x", labelsize=6)
    ax.legend(fontsize=6)


def _throughput(ax: Any, r: Results) -> None:
    tp = r["onward"].get("throughput", {})
    floor = r.get("temporal_floor", {})
    labels = ["onward\nsteps/s", "temporal no-op\nround trips/s"]
    ax.bar(labels, [tp.get("steps_per_s") or 0, floor.get("round_trips_per_s") or 0])
    ax.axhline(150, color="red", linestyle="--", label="target 150 steps/s")
    ax.set_title(f"Throughput, {tp.get('conversations', '?')} concurrent conversations")
    ax.legend(fontsize=6)


def _cap(ax: Any, r: Results) -> None:
    cap = r["onward"].get("llm_cap", {})
    series = cast(list[list[float]], cap.get("in_flight_series") or [])
    ax.plot([p[0] for p in series], [p[1] for p in series], label="model calls in flight")
    ax.axhline(cap.get("cap", 50), color="red", linestyle="--", label="cap")
    ax.set_xlabel("s")
    ax.set_title(f"LLM cap: max {cap.get('max_in_flight')} in flight")
    ax.legend(fontsize=6)


def _recovery(ax: Any, r: Results) -> None:
    rec = r["onward"].get("recovery", {})
    keys = ("ready_s", "next_step_s", "in_flight_call_s", "all_resumed_s")
    ax.bar([k.removesuffix("_s").replace("_", "\n") for k in keys], [rec.get(k) or 0 for k in keys])
    ax.axhline(3, color="red", linestyle="--", label="target 3 s")
    ax.set_ylabel("s after restart")
    ax.set_title("Recovery after SIGKILL")
    ax.legend(fontsize=6)


def _memory(ax: Any, r: Results) -> None:
    mem = r["onward"].get("memory", {})
    ax.bar(
        ["worker idle", f"{mem.get('conversations', '?')} idle\nconversations"],
        [mem.get("rss_idle_worker_mib") or 0, mem.get("rss_mib") or 0],
    )
    ax.axhline(1024, color="red", linestyle="--", label="target 1 GiB")
    ax.set_ylabel("worker RSS (MiB)")
    ax.set_title("Worker memory")
    ax.legend(fontsize=6)


HISTORY_SYSTEMS = (
    ("onward", ("onward",)),
    ("Pydantic AI on Temporal", ("pydantic_ai_temporal",)),
    ("OpenAI Agents on Temporal", ("openai_agents_temporal",)),
)


def _histories(r: Results) -> list[tuple[str, dict[str, Any]]]:
    out: list[tuple[str, dict[str, Any]]] = []
    for label, (key,) in HISTORY_SYSTEMS:
        h = cast(dict[str, Any], r.get(key, {})).get("history")
        if isinstance(h, dict) and "error" not in h:
            out.append((label, cast(dict[str, Any], h)))
    return out


def _series(ax: Any, r: Results, key: str, ylabel: str, title: str) -> None:
    for label, h in _histories(r):
        values = cast(list[int], h.get(key) or [])
        ax.plot(range(1, len(values) + 1), [v / 1024 for v in values], label=label)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("turn")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize=6)


def _history_per_turn(ax: Any, r: Results) -> None:
    _series(ax, r, "bytes_per_turn_series", "KiB added by the turn", "History bytes per turn")


def _history_run_size(ax: Any, r: Results) -> None:
    _series(ax, r, "run_bytes_series", "KiB in the current run", "History of the current run")
    ax.axhline(50 * 1024, color="red", linestyle="--", label="Temporal's 50 MB limit")
    ax.legend(fontsize=6)


def _history_latency(ax: Any, r: Results) -> None:
    systems = _histories(r)
    labels = [label.replace(" on ", "\non ") for label, _ in systems]
    xs = range(len(systems))
    ax.bar([x - 0.2 for x in xs], [h.get("step_p50_ms") or 0 for _, h in systems], 0.4, label="p50")
    ax.bar([x + 0.2 for x in xs], [h.get("step_p95_ms") or 0 for _, h in systems], 0.4, label="p95")
    ax.set_xticks(list(xs), labels, fontsize=7)
    ax.set_ylabel("ms per step (tool call + next model call)")
    ax.set_title("Step latency, same conversation (turns 1-100)")
    ax.legend(fontsize=6)


def draw(results: Results, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")  # no display on servers and in CI
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(3, 3, figsize=(16, 13))
    panels = (
        _latency,
        _breakdown,
        _throughput,
        _cap,
        _recovery,
        _memory,
        _history_per_turn,
        _history_run_size,
        _history_latency,
    )
    for ax, panel in zip(axes.flat, panels, strict=True):
        try:
            panel(ax, results)
        except (KeyError, TypeError, ValueError) as exc:  # a failed scenario: say so
            ax.set_title(f"{panel.__name__.strip('_')}: no data ({exc})", fontsize=8)
    fig.suptitle(f"onward benchmark - {results['machine']['cpu_model']}", fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
