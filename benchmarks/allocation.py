"""Accuracy of rollout-allocation strategies at equal budget, on the built-in simulator.

Every strategy runs the same LangGraph search graph on the same simulated problems with the
same seeds; only the allocation rule differs. Rows with "oracle PRM" use the simulator's exact
success probabilities instead of the noisy PRM (the limit of what a verifier can give).

    python benchmarks/allocation.py                      # 200 problems, N in {4, 16, 64}
    python benchmarks/allocation.py --problems 50 --budgets 4 16 --json out.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from typing import Any

from langgraph_tts import create_search_graph
from langgraph_tts.sim.inprocess import SimEmbedder, SimPolicy, SimPRM
from langgraph_tts.sim.server import SimConfig
from langgraph_tts.sim.world import SimProblem, is_correct, make_problems

STRATEGIES = ["best_of_n", "beam", "dvts", "rebase", "dora", "particle_filtering"]
ORACLE_STRATEGIES = ["rebase", "dora"]


async def run_cell(
    strategy: str,
    budget: int,
    problems: list[SimProblem],
    *,
    scenario: str,
    prm_noise: float | None,
    prm_miss_rate: float | None = None,
    seed: int,
    concurrency: int,
) -> dict[str, Any]:
    """Accuracy and mean spend of one strategy at one budget."""
    config_args: dict[str, Any] = {"scenario": scenario, "seed": seed}
    if prm_noise is not None:
        config_args["prm_noise"] = prm_noise
    if prm_miss_rate is not None:
        config_args["prm_miss_rate"] = prm_miss_rate
    config = SimConfig(**config_args)
    graph = create_search_graph(
        strategy,
        policy=SimPolicy(config),
        prm=SimPRM(config),
        embedder=SimEmbedder(config),
        budget=budget,
    )
    limit = asyncio.Semaphore(concurrency)
    correct = samples = tokens = 0

    async def one(i: int, problem: SimProblem) -> None:
        nonlocal correct, samples, tokens
        async with limit:
            from langgraph_tts.context import SearchContext

            ctx = SearchContext(strategy=strategy, budget=budget, seed=seed * 100_003 + i)  # type: ignore[arg-type]
            out = await graph.ainvoke({"problem": problem.text}, context=ctx)
        correct += is_correct(problem, out["answer"])
        samples += out["ledger"].get("samples", 0)
        tokens += out["ledger"].get("completion_tokens", 0)

    await asyncio.gather(*(one(i, p) for i, p in enumerate(problems)))
    n = len(problems)
    return {"accuracy": correct / n, "samples": samples / n, "tokens": tokens / n}


def render(table: dict[str, dict[int, dict[str, Any]]], budgets: list[int]) -> str:
    head = (
        "| strategy | "
        + " | ".join(f"N={b} acc" for b in budgets)
        + " | "
        + " | ".join(f"N={b} tokens" for b in budgets)
        + " |"
    )
    sep = "|---" * (1 + 2 * len(budgets)) + "|"
    lines = [head, sep]
    for name, row in table.items():
        accs = " | ".join(f"{row[b]['accuracy']:.3f}" for b in budgets)
        toks = " | ".join(f"{row[b]['tokens']:.0f}" for b in budgets)
        lines.append(f"| {name} | {accs} | {toks} |")
    return "\n".join(lines)


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    problems = make_problems(args.problems, scenario=args.scenario, seed=args.seed)
    table: dict[str, dict[int, dict[str, Any]]] = {}
    rows = [(s, None) for s in args.strategies]
    if not args.no_oracle:
        rows += [(s, 0.0) for s in ORACLE_STRATEGIES]
    for strategy, noise in rows:
        name = strategy if noise is None else f"{strategy} (oracle PRM)"
        table[name] = {}
        for budget in args.budgets:
            started = time.perf_counter()
            cell = await run_cell(
                strategy,
                budget,
                problems,
                scenario=args.scenario,
                prm_noise=noise,
                prm_miss_rate=args.prm_miss_rate,
                seed=args.seed,
                concurrency=args.concurrency,
            )
            cell["seconds"] = round(time.perf_counter() - started, 1)
            table[name][budget] = cell
            print(
                f"{name:>22} N={budget:<3} acc={cell['accuracy']:.3f} "
                f"tokens={cell['tokens']:.0f} ({cell['seconds']}s)",
                file=sys.stderr,
            )
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problems", type=int, default=200)
    parser.add_argument("--budgets", type=int, nargs="+", default=[4, 16, 64])
    parser.add_argument("--scenario", default="popular_worse")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--strategies", nargs="+", default=STRATEGIES)
    parser.add_argument(
        "--prm-miss-rate",
        type=float,
        help="how often the PRM overlooks a wrong step, for every direction (default: each "
        "direction's own subtlety; see docs/simulator.md)",
    )
    parser.add_argument("--no-oracle", action="store_true", help="skip the oracle-PRM rows")
    parser.add_argument("--json", help="also write the table as JSON to this path")
    args = parser.parse_args()
    os.environ.setdefault("LANGSMITH_TRACING", "false")
    started = time.perf_counter()
    table = asyncio.run(main_async(args))
    print(
        f"\nscenario={args.scenario}, prm_miss_rate={args.prm_miss_rate}, "
        f"{args.problems} simulated problems, seed={args.seed}, "
        f"{time.perf_counter() - started:.0f}s\n"
    )
    print(render(table, args.budgets))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump({"args": vars(args), "table": table}, fh, indent=2)


if __name__ == "__main__":
    main()
