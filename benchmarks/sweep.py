"""Throughput and client cost of `eval` sweeps on the simulator: DORA at N=16.

The simulator runs in ANOTHER process (its CPU is not counted). Measured:

1. problems per minute and client CPU per rollout (sample) with the local executor at
   concurrency 1, 8 and 64;
2. the harness's overhead over the graph runs: the same problems through bare
   `Solver` calls (a semaphore and `asyncio.gather`, no store, no metering, no grading)
   vs `run_sweep` (store, replica routing, metered clients, grading, coverage);
3. the Ray executor with 2 workers vs the local executor (same cells).

    python benchmarks/sweep.py [--problems 500] [--compare 100] [--latency-ms 50]

`--problems` is the size of the concurrency 1, 8 and 64 runs (`--c1-problems` for 1 alone); `--compare` the size of the overhead and Ray comparisons (`--pairs` alternated
bare/sweep pairs, the least CPU of each kept). Client CPU is this process's plus its
descendants' (the grader's workers; with Ray, the raylet and the workers), never the
simulator's.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from _sim import start_sim  # benchmarks/_sim.py

from langgraph_tts.context import ScaleContext, with_overrides
from langgraph_tts.evaluation import load_dataset
from langgraph_tts.replicas import replica_urls
from langgraph_tts.solve import Solver
from langgraph_tts.sweep import SweepSpec, run_sweep

os.environ.setdefault("LANGSMITH_TRACING", "false")


SIM_PID = 0
TICK = os.sysconf("SC_CLK_TCK")


def _descendants_cpu_s(root: int, skip: int) -> float:
    """CPU of the live processes below `root` (the grader's workers, Ray's raylet and
    workers), leaving out the simulator `skip` and its children."""
    parents: dict[int, int] = {}
    times: dict[int, float] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid = int(entry)
        parents[pid] = int(fields[1])
        times[pid] = (int(fields[11]) + int(fields[12])) / TICK

    def below(pid: int) -> bool:
        while pid > 1:
            pid = parents.get(pid, 0)
            if pid == skip:
                return False
            if pid == root:
                return True
        return False

    return sum(t for pid, t in times.items() if pid not in (root, skip) and below(pid))


def cpu_s() -> float:
    """Client CPU: this process, its finished children and its live descendants."""
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    own = me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime
    return own + _descendants_cpu_s(os.getpid(), SIM_PID)


def context(url: str) -> ScaleContext:
    return ScaleContext(
        strategy="dora",
        budget=16,
        seed=0,
        base_url=url + "/v1",
        model="sim-policy",
        prm_url=url,
        prm_model="sim-prm",
        embed_url=url + "/v1",
        embed_model="sim-embed",
    )


async def sweep(url: str, problems: int, concurrency: int, executor: str) -> dict[str, Any]:
    ctx = context(url)
    spec = SweepSpec(["sim:default"], ["dora"], [16], [0], ctx, limit=problems)
    out = Path(tempfile.mkdtemp(prefix="tts-sweep-bench-"))
    reps = replica_urls([ctx.base_url], [ctx.prm_url], [ctx.embed_url])
    cpu0, t0 = cpu_s(), time.perf_counter()
    summary = await run_sweep(
        spec, out, reps, concurrency=concurrency, executor=executor, ray_shard_size=25
    )
    wall, cpu = time.perf_counter() - t0, cpu_s() - cpu0
    (group,) = summary["groups"]
    samples = group["mean_samples"] * group["n"]
    shutil.rmtree(out, ignore_errors=True)
    return {
        "executor": executor,
        "concurrency": concurrency,
        "problems": group["n"],
        "accuracy": round(group["accuracy"], 3),
        "wall_s": round(wall, 2),
        "problems_per_min": round(group["n"] / wall * 60, 1),
        "client_cpu_s": round(cpu, 2),
        "client_cpu_ms_per_rollout": round(cpu / samples * 1000, 3),
        "rollouts": int(samples),
    }


async def bare(url: str, problems: int, concurrency: int) -> dict[str, Any]:
    """The same graph runs with nothing around them."""
    ctx = context(url)
    items = load_dataset("sim:default", limit=problems)
    solver = Solver(ctx)
    gate = asyncio.Semaphore(concurrency)
    samples = 0

    async def one(item: dict[str, str]) -> None:
        nonlocal samples
        async with gate:
            out = await solver(item["problem"], context=with_overrides(ctx, seed=0))
            samples += int(out["ledger"]["samples"])

    cpu0, t0 = cpu_s(), time.perf_counter()
    await asyncio.gather(*(one(p) for p in items))
    wall, cpu = time.perf_counter() - t0, cpu_s() - cpu0
    return {
        "executor": "bare Solver calls",
        "concurrency": concurrency,
        "problems": len(items),
        "wall_s": round(wall, 2),
        "problems_per_min": round(len(items) / wall * 60, 1),
        "client_cpu_s": round(cpu, 2),
        "client_cpu_ms_per_rollout": round(cpu / samples * 1000, 3),
        "rollouts": samples,
    }


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    global SIM_PID
    proc, url = start_sim("--latency-ms", str(args.latency_ms))
    SIM_PID = proc.pid
    results: dict[str, Any] = {
        "setup": {
            "strategy": "dora",
            "budget": 16,
            "cores": os.cpu_count(),
            "sim_latency_ms": args.latency_ms,
            "load_average_at_start": os.getloadavg(),
        }
    }
    try:
        n = args.problems
        results["local"] = []
        for concurrency, count in ((1, args.c1_problems or n), (8, n), (64, n)):
            row = await sweep(url, count, concurrency, "local")
            print(json.dumps(row), flush=True)
            results["local"].append(row)
        m = args.compare
        pairs = []
        for _ in range(args.pairs):  # alternated, so load from other processes hits both
            pairs.append((await bare(url, m, 8), await sweep(url, m, 8, "local")))
        plain = min((p for p, _ in pairs), key=lambda r: r["client_cpu_s"])
        harness = min((h for _, h in pairs), key=lambda r: r["client_cpu_s"])
        results["overhead"] = {
            "sweep": harness,
            "bare": plain,
            "cpu_ratio": round(harness["client_cpu_s"] / plain["client_cpu_s"], 3),
            "wall_ratio": round(harness["wall_s"] / plain["wall_s"], 3),
            "cpu_ratio_per_pair": [
                round(h["client_cpu_s"] / p["client_cpu_s"], 3) for p, h in pairs
            ],
            "wall_ratio_per_pair": [round(h["wall_s"] / p["wall_s"], 3) for p, h in pairs],
        }
        print(json.dumps(results["overhead"]), flush=True)
        if not args.no_ray:
            import ray

            ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
            try:
                ray_row = await sweep(url, m, 8, "ray")
            finally:
                ray.shutdown()
            local_row = await sweep(url, m, 16, "local")
            results["ray"] = {
                "ray_2_workers_concurrency_8_each": ray_row,
                "local_concurrency_16": local_row,
            }
            print(json.dumps(results["ray"]), flush=True)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problems", type=int, default=500)
    parser.add_argument("--out", type=Path, default=Path("docs/benchmarks/sweep.json"))
    parser.add_argument(
        "--c1-problems", type=int, help="problems at concurrency 1 (default: --problems)"
    )
    parser.add_argument("--compare", type=int, default=100)
    parser.add_argument("--pairs", type=int, default=3, help="bare/sweep pairs (min is kept)")
    parser.add_argument("--latency-ms", type=float, default=50.0, help="simulator delay")
    parser.add_argument("--no-ray", action="store_true")
    args = parser.parse_args()
    results = asyncio.run(main_async(args))
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"-> {args.out}")


if __name__ == "__main__":
    main()
