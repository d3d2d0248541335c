"""SCALE's accuracy/compute trade-off on the built-in simulator: the shape of its Table 2.

Rows, on the same simulated problems with the same seeds:

- CoT (non-thinking): one System-1 sample of the whole problem (SCALE's CoT prompt);
- CoT (thinking): one System-2 sample of the whole problem;
- SCALE, tau = 0: every sub-problem to System-2 (only difficulty exactly 0 stays on System-1);
- SCALE, tau = 0.2 ... 0.9 (the paper's sweep; the last sub-problem is forced to 0.9, so
  tau = 0.9 sends nothing to System-2).

Columns: accuracy (pass@1 averaged over `--samples` runs per problem), mean completion tokens per problem (everything: outlines, selection,
difficulty and solving), of which solving, tokens per solved sub-problem (the paper's Tpi),
and the share of sub-problems routed to System-2 (the paper's "Hard").

    python benchmarks/scale.py                         # 200 problems, default scenario
    python benchmarks/scale.py --problems 200 --scenario hard --json scale.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from datetime import date
from typing import Any

from langgraph_tts.answers import extract_answer
from langgraph_tts.clients.types import ChatMessage, Policy
from langgraph_tts.context import ScaleContext
from langgraph_tts.prompts import SOLVE_SUBPROBLEM_SYSTEM_PROMPT
from langgraph_tts.scale import create_scale_graph
from langgraph_tts.scale.systems import system_params
from langgraph_tts.sim.config import SimConfig
from langgraph_tts.sim.inprocess import SimPolicy
from langgraph_tts.sim.world import SimProblem, is_correct, make_problems

TAUS = [0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]


def context_for(args: argparse.Namespace, i: int, k: int, **overrides: Any) -> ScaleContext:
    """Settings of sample k of problem i: the paper's defaults and a seed of its own, the
    same in every row (so rows differ only in what they change)."""
    return ScaleContext(
        strategy="scale",
        outline_versions=args.versions,
        seed=args.seed * 100_003 + k * 10_007 + i,
        **overrides,
    )


async def cot(
    policy: Policy, problem: SimProblem, ctx: ScaleContext, *, thinking: bool
) -> dict[str, Any]:
    """One whole-problem sample with the sub-problem solver's prompt and one system's settings."""
    messages: list[ChatMessage] = [
        {"role": "system", "content": SOLVE_SUBPROBLEM_SYSTEM_PROMPT},
        {"role": "user", "content": problem.text},
    ]
    mode = "system2" if thinking else "system1"
    gen = await policy.generate(messages, params=system_params(ctx, mode, seed=ctx.seed))
    tokens = gen.usage.completion_tokens
    return {
        "correct": is_correct(problem, extract_answer(gen.samples[0].text)),
        "tokens": tokens,
        "solve_tokens": tokens,
        "subproblems": 1,
        "system2": int(thinking),
    }


async def scale(graph: Any, problem: SimProblem, ctx: ScaleContext) -> dict[str, Any]:
    """One SCALE run; spend from its ledger and per-mode split."""
    out = await graph.ainvoke({"problem": problem.text}, context=ctx)
    result = out["result"]
    by_mode = result["by_mode"]
    solve = sum(by_mode[m].get("completion_tokens", 0) for m in ("system1", "system2"))
    subs = result["subproblems"]
    return {
        "correct": is_correct(problem, out["answer"]),
        "tokens": out["ledger"].get("completion_tokens", 0),
        "solve_tokens": solve,
        "subproblems": len(subs),
        "system2": sum(1 for s in subs if s["mode"] == "system2"),
        "fallbacks": len(result["fallbacks"]),
    }


async def run_row(
    name: str,
    problems: list[SimProblem],
    args: argparse.Namespace,
    policy: Policy,
    graph: Any,
    *,
    tau: float | None = None,
    thinking: bool = False,
) -> dict[str, Any]:
    """Every problem under one configuration, `--concurrency` at a time."""
    limit = asyncio.Semaphore(args.concurrency)

    async def one(i: int, k: int, problem: SimProblem) -> dict[str, Any]:
        async with limit:
            if tau is None:
                return await cot(policy, problem, context_for(args, i, k), thinking=thinking)
            return await scale(graph, problem, context_for(args, i, k, tau=tau))

    started = time.perf_counter()
    runs = [(i, k, p) for k in range(args.samples) for i, p in enumerate(problems)]
    rows = await asyncio.gather(*(one(i, k, p) for i, k, p in runs))
    n = len(rows)
    subs = sum(r["subproblems"] for r in rows)
    return {
        "method": name,
        "tau": tau,
        "accuracy": 100.0 * sum(r["correct"] for r in rows) / n,
        "tokens": sum(r["tokens"] for r in rows) / n,
        "solve_tokens": sum(r["solve_tokens"] for r in rows) / n,
        "tpi": sum(r["solve_tokens"] for r in rows) / subs,
        "subproblems": subs / n,
        "system2_pct": 100.0 * sum(r["system2"] for r in rows) / subs,
        "fallbacks": sum(r.get("fallbacks", 0) for r in rows),
        "seconds": time.perf_counter() - started,
    }


def print_table(rows: list[dict[str, Any]]) -> None:
    header = (
        f"{'method':<22} {'acc %':>6} {'tokens':>8} {'solving':>8} {'Tpi':>6} "
        f"{'subs':>5} {'System-2 %':>10}"
    )
    print(header)
    print("-" * len(header))
    for r in rows:
        print(
            f"{r['method']:<22} {r['accuracy']:>6.1f} {r['tokens']:>8.0f} "
            f"{r['solve_tokens']:>8.0f} {r['tpi']:>6.0f} {r['subproblems']:>5.2f} "
            f"{r['system2_pct']:>10.1f}"
        )


async def main(args: argparse.Namespace) -> list[dict[str, Any]]:
    config = SimConfig(scenario=args.scenario, seed=args.seed)
    problems = make_problems(args.problems, scenario=args.scenario, seed=args.seed)
    policy = SimPolicy(config)
    graph = create_scale_graph(policy=policy)
    rows = [
        await run_row("CoT (non-thinking)", problems, args, policy, graph),
        await run_row("CoT (thinking)", problems, args, policy, graph, thinking=True),
        await run_row("SCALE all-System-2", problems, args, policy, graph, tau=0.0),
    ]
    for tau in TAUS:
        rows.append(await run_row(f"SCALE tau={tau:.1f}", problems, args, policy, graph, tau=tau))
    return rows


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--problems", type=int, default=200)
    parser.add_argument("--scenario", default="default")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--samples", type=int, default=2, help="runs per problem, accuracy averaged (paper: 8)"
    )
    parser.add_argument("--versions", type=int, default=8, help="outline versions (paper: 8)")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--json", help="also write the rows to this file")
    return parser.parse_args(argv)


if __name__ == "__main__":
    arguments = parse_args()
    began = time.perf_counter()
    table = asyncio.run(main(arguments))
    print(
        f"SCALE on the simulator: {arguments.problems} problems, scenario "
        f"{arguments.scenario!r}, seed {arguments.seed}, {arguments.samples} samples each, "
        f"{arguments.versions} outline versions "
        f"({date.today().isoformat()}, {os.cpu_count()} CPUs, Python {sys.version.split()[0]})"
    )
    print_table(table)
    print(f"total {time.perf_counter() - began:.1f} s")
    if arguments.json:
        with open(arguments.json, "w") as fh:
            json.dump(table, fh, indent=2)
