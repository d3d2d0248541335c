"""Early-stopping self-consistency over HTTP: fixed N vs adaptive rounds vs adaptive + cancel.

Starts `langgraph-tts sim-server` on a free port (streamed requests decode `--stream-interval`
tokens of every choice per `--decode-ms` step, so a client can leave mid-round) and runs the
same problems and seeds three ways with `ChatPolicy`:

- fixed: one request with `n` = N per problem;
- adaptive: rounds of width 4, 8, 16, ... until the Beta test decides (`adaptive_cancel=false`,
  each round one non-streamed request with `n` = w, nothing cancelled inside a round);
- adaptive+cancel: each round one streamed request; the test runs whenever a choice finishes
  and the client closes the stream once it decides.

Prints accuracy, mean samples (finished solutions), mean choices started (samples +
cancelled), mean completion tokens (the ledger, cancelled choices' partial tokens included),
the simulator's own completion-token count per problem, and the ledger's estimate of tokens
saved. Wall times are in the JSON only: non-streamed simulated requests take no decoding time,
streamed ones `--decode-ms` per step, so they do not compare.

    python benchmarks/sc_cancel.py --problems 200 --budget 16
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
import urllib.request
from typing import Any

from _sim import start_sim  # benchmarks/_sim.py

from langgraph_tts import create_search_graph
from langgraph_tts.clients import ChatPolicy
from langgraph_tts.context import SearchContext
from langgraph_tts.sim.world import is_correct, make_problems

MODES = {
    "fixed": {},
    "adaptive": {"adaptive": True, "adaptive_cancel": False},
    "adaptive+cancel": {"adaptive": True, "adaptive_cancel": True},
}


def _post(url: str) -> None:
    request = urllib.request.Request(url, data=b"{}", method="POST")
    urllib.request.urlopen(request, timeout=10).read()


def _stats(root: str) -> dict[str, Any]:
    with urllib.request.urlopen(root + "/sim/stats", timeout=10) as reply:
        return json.loads(reply.read())  # type: ignore[no-any-return]


async def run_mode(
    root: str, mode: str, budget: int, problems: list[Any], *, seed: int, concurrency: int
) -> dict[str, Any]:
    """One row: the mode's accuracy and mean spend per problem."""
    policy = ChatPolicy(root + "/v1", "sim-policy", max_concurrency=concurrency)
    graph = create_search_graph("self_consistency", policy=policy, budget=budget)
    limit = asyncio.Semaphore(concurrency)
    rows: list[dict[str, Any]] = []

    async def one(i: int, problem: Any) -> None:
        settings = {"strategy": "self_consistency", "budget": budget, "seed": seed * 100_003 + i}
        async with limit:
            out = await graph.ainvoke(
                {"problem": problem.text}, context=SearchContext(**settings, **MODES[mode])
            )
        ledger = out["ledger"]
        rows.append(
            {
                "correct": is_correct(problem, out["answer"]),
                "samples": ledger.get("samples", 0),
                "cancelled": ledger.get("cancelled", 0),
                "tokens": ledger.get("completion_tokens", 0),
                "saved": ledger.get("saved_tokens_est", 0),
                "decided": (out["result"].get("adaptive") or {}).get("stop") == "decided",
            }
        )

    _post(root + "/sim/reset")
    start = time.perf_counter()
    await asyncio.gather(*(one(i, p) for i, p in enumerate(problems)))
    wall = time.perf_counter() - start
    await policy.aclose()
    await asyncio.sleep(0.2)  # the server books an aborted stream once it notices
    stats = _stats(root)
    n = len(rows)

    def mean(key: str) -> float:
        return sum(float(r[key]) for r in rows) / n

    return {
        "mode": mode,
        "accuracy": mean("correct"),
        "samples": mean("samples"),
        "started": mean("samples") + mean("cancelled"),
        "tokens": mean("tokens"),
        "server_tokens": stats["completion_tokens"] / n,
        "saved_est": mean("saved"),
        "decided": sum(r["decided"] for r in rows),
        "stopped": sum(1 for r in rows if r["cancelled"]),
        "aborted": stats.get("streams", {}).get("aborted", 0),
        "wall_s": wall,
    }


def render(rows: list[dict[str, Any]]) -> str:
    head = (
        "| run | accuracy | samples/problem | choices started | tokens/problem (ledger) "
        "| tokens/problem (server) | saved (ledger est.) | decided | runs with a stopped round "
        "| streams aborted (server) |"
    )
    lines = [head, "|" + "---|" * 10]
    for r in rows:
        lines.append(
            f"| {r['mode']} | {r['accuracy']:.3f} | {r['samples']:.1f} | {r['started']:.1f} "
            f"| {r['tokens']:.0f} | {r['server_tokens']:.0f} | {r['saved_est']:.0f} "
            f"| {r['decided']} | {r['stopped']} | {r['aborted']} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problems", type=int, default=200)
    parser.add_argument("--budget", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--decode-ms", type=float, default=2.0)
    parser.add_argument("--stream-interval", type=int, default=4)
    parser.add_argument("--modes", nargs="+", default=list(MODES), choices=list(MODES))
    parser.add_argument("--json", help="write the rows here")
    args = parser.parse_args(argv)
    proc, root = start_sim(
        "--decode-ms", str(args.decode_ms), "--stream-interval", str(args.stream_interval)
    )
    try:
        problems = make_problems(args.problems, seed=args.seed)
        rows = []
        for mode in args.modes:
            row = asyncio.run(
                run_mode(
                    root, mode, args.budget, problems, seed=args.seed, concurrency=args.concurrency
                )
            )
            rows.append(row)
            print(json.dumps(row), file=sys.stderr, flush=True)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    print(render(rows))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"args": vars(args), "rows": rows}, fh, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
