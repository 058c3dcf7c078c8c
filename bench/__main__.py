"""`python -m bench`: run the benchmark, write bench/results/latest.{json,png}."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

from bench import report
from bench.run import FULL, QUICK, run, run_history

RESULTS = Path(__file__).resolve().parent / "results"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run")
    parser.add_argument("--out", type=Path, default=RESULTS, help="results directory")
    parser.add_argument(
        "--stock-server",
        action="store_true",
        help="run everything on the dev server's defaults, without onward's dynamic config",
    )
    parser.add_argument(
        "--only",
        choices=["history"],
        help="run one scenario and merge it into the last results (history: onward and peers)",
    )
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    scenario = run_history if args.only == "history" else run
    results = asyncio.run(scenario(sizes, args.out, stock=args.stock_server))
    for line in report.summary_lines(results):
        print(line)
    print(f"results: {args.out / 'latest.json'}, chart: {args.out / 'latest.png'}")
    # Missed targets are reported, not failed: the numbers are the product here.
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
