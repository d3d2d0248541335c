"""Load: many problems in flight at once against the simulator (issue 11, item 2).

The simulator runs in ANOTHER process. Each measurement is a fresh client process that solves
K simulated problems ALL AT ONCE (one `asyncio.gather` over a `Solver`, so K problems are in
flight) and reports:

- peak RSS of the client process, its baseline (after imports and one warm-up problem) and
  the growth per problem in flight, (peak - baseline) / K;
- the most file descriptors it had open, and the most TCP connections to the server (the
  connection pools are bounded by `max_concurrency` per client: policy, PRM and embedder);
- the most asyncio tasks alive at once (queues: every waiting request is a task parked on its
  client's semaphore, so this is bounded by problems x fan-out, not by time);
- problems answered, errors, wall time, problems per second.

It runs K at two server latencies: a fast server and a slow one, to show backpressure (the
same bounded pools and memory, lower throughput, no errors) rather than collapse.

    python benchmarks/load.py                        # K = 100 and 1000, latency 0 and 200 ms
    python benchmarks/load.py --problems 200 --latency-ms 0,150 --strategy best_of_n  # ~ CI
    python benchmarks/load.py --out docs/benchmarks/load.json

Only 127.0.0.1 is contacted; every run is bounded by `--timeout-s`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from _sim import start_sim  # benchmarks/_sim.py

STRATEGY = "dora"
BUDGET = 4


def _rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return 0.0


def _server_inodes(port: int) -> set[str]:
    """Inodes of the TCP sockets connected to 127.0.0.1:`port` (from /proc/net/tcp)."""
    inodes = set()
    suffix = f":{port:04X}"
    with open("/proc/net/tcp") as fh:
        next(fh)
        for line in fh:
            fields = line.split()
            if fields[2].endswith(suffix) and fields[3] != "0A":  # remote port; not LISTEN
                inodes.add(fields[9])
    return inodes


def _fds(port: int) -> tuple[int, int]:
    """(open file descriptors, TCP connections to the server on `port`)."""
    server = _server_inodes(port)
    fds = connections = 0
    for name in os.listdir("/proc/self/fd"):
        fds += 1
        try:
            link = os.readlink(f"/proc/self/fd/{name}")
        except OSError:
            continue
        if link.startswith("socket:[") and link[8:-1] in server:
            connections += 1
    return fds, connections


class _Sampler:
    """Peak RSS, fds, sockets and asyncio tasks, sampled every 20 ms in a thread."""

    def __init__(self, loop: asyncio.AbstractEventLoop, port: int) -> None:
        self.loop = loop
        self.port = port
        self.peak_rss_mb = _rss_mb()
        self.max_fds, self.max_sockets = _fds(port)
        self.max_tasks = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            self.peak_rss_mb = max(self.peak_rss_mb, _rss_mb())
            fds, sockets = _fds(self.port)
            self.max_fds = max(self.max_fds, fds)
            self.max_sockets = max(self.max_sockets, sockets)
            self.max_tasks = max(self.max_tasks, len(asyncio.all_tasks(self.loop)))

    def __enter__(self) -> _Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


async def _child(
    port: int, problems: int, concurrency: int, timeout_s: float, strategy: str, budget: int
) -> dict[str, Any]:
    from langgraph_tts.context import SolveContext
    from langgraph_tts.sim.world import is_correct, make_problems
    from langgraph_tts.solve import Solver

    url = f"http://127.0.0.1:{port}"
    ctx = SolveContext(
        strategy=strategy,
        budget=budget,
        seed=1,
        base_url=url + "/v1",
        model="sim-policy",
        prm_url=url,
        prm_model="sim-prm",
        prm_template="qwen2.5",  # batched /pooling: one PRM request per iteration, as with vLLM
        embed_url=url + "/v1",
        embed_model="sim-embed",
        max_concurrency=concurrency,
    )
    solver = Solver(ctx)
    items = make_problems(problems + 1, seed=3)
    await solver(items[0].text)  # warm-up: graphs compiled, pools open, caches filled
    baseline_mb = _rss_mb()
    fds0, sockets0 = _fds(port)
    answered = correct = 0
    errors: list[str] = []

    async def one(p: Any) -> None:
        nonlocal answered, correct
        try:
            out = await solver(p.text)
        except Exception as err:
            errors.append(f"{type(err).__name__}: {err}")
            return
        answered += out["answer"] is not None
        correct += is_correct(p, out["answer"])

    started = time.perf_counter()
    with _Sampler(asyncio.get_running_loop(), port) as sampler:
        async with asyncio.timeout(timeout_s):
            await asyncio.gather(*(one(p) for p in items[1:]))
    wall = time.perf_counter() - started
    peak = max(sampler.peak_rss_mb, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    return {
        "problems_in_flight": problems,
        "answered": answered,
        "lost": problems - answered,
        "errors": len(errors),
        "first_error": errors[0] if errors else None,
        "accuracy": round(correct / problems, 3),
        "wall_s": round(wall, 2),
        "problems_per_s": round(problems / wall, 2),
        "rss_baseline_mb": round(baseline_mb, 1),
        "rss_peak_mb": round(peak, 1),
        "rss_growth_per_problem_kb": round((peak - baseline_mb) * 1024 / problems, 1),
        "fds_baseline": fds0,
        "fds_max": sampler.max_fds,
        "connections_baseline": sockets0,
        "connections_max": sampler.max_sockets,
        "connection_bound": 3 * concurrency,
        "asyncio_tasks_max": sampler.max_tasks,
    }


def measure(
    port: int,
    problems: int,
    concurrency: int = 64,
    timeout_s: float = 600.0,
    strategy: str = STRATEGY,
    budget: int = BUDGET,
) -> dict[str, Any]:
    """One fresh client process: `problems` in flight against the simulator on `port`."""
    out = subprocess.run(
        [
            sys.executable,
            __file__,
            "--child",
            str(port),
            "--problems",
            str(problems),
            "--concurrency",
            str(concurrency),
            "--timeout-s",
            str(timeout_s),
            "--strategy",
            strategy,
            "--budget",
            str(budget),
        ],
        capture_output=True,
        text=True,
        timeout=timeout_s + 60,
        env={**os.environ, "LANGSMITH_TRACING": "false"},
    )
    if out.returncode != 0:
        raise RuntimeError(f"load child failed: {out.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def run(
    sizes: list[int],
    latencies: list[float],
    concurrency: int = 64,
    timeout_s: float = 600.0,
    strategy: str = STRATEGY,
    budget: int = BUDGET,
) -> list[dict[str, Any]]:
    rows = []
    for latency in latencies:
        proc, url = start_sim("--latency-ms", str(latency), "--seed", "3")
        port = int(url.rsplit(":", 1)[1])
        try:
            for k in sizes:
                row = {
                    "latency_ms": latency,
                    "strategy": f"{strategy} N={budget}",
                    **measure(port, k, concurrency, timeout_s, strategy, budget),
                }
                rows.append(row)
                print(json.dumps(row), file=sys.stderr)
        finally:
            proc.terminate()
            proc.wait(timeout=10)
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    head = (
        "| in flight | server latency | answered | lost | wall | problems/s | peak RSS | "
        "growth per problem | fds max | connections max (bound) | asyncio tasks max |\n"
        "|---|---|---|---|---|---|---|---|---|---|---|\n"
    )
    lines = [
        f"| {r['problems_in_flight']} | {r['latency_ms']:g} ms | {r['answered']} | {r['lost']} | "
        f"{r['wall_s']} s | {r['problems_per_s']} | {r['rss_peak_mb']} MB "
        f"(baseline {r['rss_baseline_mb']}) | {r['rss_growth_per_problem_kb']} KB | "
        f"{r['fds_max']} | {r['connections_max']} ({r['connection_bound']}) | "
        f"{r['asyncio_tasks_max']} |"
        for r in rows
    ]
    return head + "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--problems", default="100,1000", help="problems in flight (list)")
    parser.add_argument("--latency-ms", default="0,200", help="server latencies (list)")
    parser.add_argument("--concurrency", type=int, default=64, help="connections per client")
    parser.add_argument("--timeout-s", type=float, default=900.0, help="bound on each run")
    parser.add_argument("--strategy", default=STRATEGY, help=f"default: {STRATEGY}")
    parser.add_argument("--budget", type=int, default=BUDGET, help=f"default: {BUDGET}")
    parser.add_argument("--json", action="store_true", help="print the rows as JSON")
    parser.add_argument("--out", type=Path, help="write the rows as JSON here")
    args = parser.parse_args()
    if args.child is not None:
        result = asyncio.run(
            _child(
                args.child,
                int(args.problems),
                args.concurrency,
                args.timeout_s,
                args.strategy,
                args.budget,
            )
        )
        print(json.dumps(result))
        return
    sizes = [int(x) for x in args.problems.split(",")]
    latencies = [float(x) for x in args.latency_ms.split(",")]
    rows = run(sizes, latencies, args.concurrency, args.timeout_s, args.strategy, args.budget)
    if args.out:
        args.out.write_text(json.dumps(rows, indent=2) + "\n")
    print(json.dumps(rows, indent=2) if args.json else table(rows))


if __name__ == "__main__":
    main()
