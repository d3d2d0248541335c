"""Adaptive compute against fixed N: accuracy vs mean samples and tokens per problem.

Every cell runs the same LangGraph search graph with the built-in simulator's in-process
clients on the same problems and seeds. Fixed rows draw N rollouts per iteration; adaptive
rows (`adaptive=true`) start at max(2, N // 4), grow while the PRM-weighted vote is
uncertain and stop once it is decided (docs/adaptive.md). "adaptive+pool" rows lend what
easy problems saved to uncertain ones through `BudgetPool`, as `eval --adaptive` does, so
their mean samples stay within the fixed-N reference (undecided runs borrow at round ends,
every run settles when it votes); "adaptive" rows run each problem alone with the default
allowance (4x its reference).

Scenario `mixed` is half `easy` and half `hard` problems (each solved against its own
world), a bimodal difficulty the other scenarios do not have.

    python benchmarks/adaptive.py --problems 200 --scenarios default popular_worse
    python benchmarks/adaptive.py --problems 50 --strategies dora --json out.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import sys
import time
from collections import Counter
from typing import Any

from _sim import world_problems  # benchmarks/_sim.py

from langgraph_tts import create_search_graph
from langgraph_tts.context import SearchContext
from langgraph_tts.sim.inprocess import SimEmbedder, SimPolicy, SimPRM
from langgraph_tts.sim.server import SimConfig
from langgraph_tts.sim.world import SimProblem, is_correct
from langgraph_tts.strategies.pool import BudgetPool

STRATEGIES = ["best_of_n", "rebase", "dora", "particle_filtering"]
MODES = ("fixed", "adaptive", "adaptive+pool")
SCENARIOS = ["default", "popular_worse", "hard", "mixed"]


async def run_cell(
    strategy: str,
    budget: int,
    mode: str,
    problems: list[tuple[str, SimProblem]],
    *,
    seed: int,
    concurrency: int,
    confidence: float,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Accuracy, mean samples/tokens, and how adaptive runs stopped, for one cell."""
    graphs = {}
    for world in {w for w, _ in problems}:
        config = SimConfig(scenario=world, seed=seed)  # type: ignore[arg-type]
        graphs[world] = create_search_graph(
            strategy,
            policy=SimPolicy(config),
            prm=SimPRM(config),
            embedder=SimEmbedder(config),
            budget=budget,
        )
    extra = extra or {}
    pool = BudgetPool() if mode == "adaptive+pool" else None
    limit = asyncio.Semaphore(concurrency)
    rows: list[dict[str, Any]] = []

    async def one(i: int, world: str, problem: SimProblem) -> None:
        async with limit:
            settings: dict[str, Any] = {
                "strategy": strategy,
                "budget": budget,
                "seed": seed * 100_003 + i,
            }
            if mode != "fixed":
                settings.update(adaptive=True, adaptive_confidence=confidence, **extra)
            if pool is not None:
                settings["adaptive_pool"] = pool.name  # runs borrow and settle themselves
            out = await graphs[world].ainvoke(
                {"problem": problem.text}, context=SearchContext(**settings)
            )
        report = out["result"].get("adaptive") or {}
        rows.append(
            {
                "correct": is_correct(problem, out["answer"]),
                "samples": out["ledger"].get("samples", 0),
                "tokens": out["ledger"].get("completion_tokens", 0),
                "reference": report.get("reference"),
                "stop": report.get("stop") or out["result"].get("stop_reason"),
                "rounds": report.get("rounds", 1),
                "borrowed": report.get("borrowed", 0),
            }
        )

    await asyncio.gather(*(one(i, w, p) for i, (w, p) in enumerate(problems)))
    n = len(rows)
    refs = [r["reference"] for r in rows if r["reference"] is not None]
    return {
        "accuracy": sum(r["correct"] for r in rows) / n,
        "samples": sum(r["samples"] for r in rows) / n,
        "tokens": sum(r["tokens"] for r in rows) / n,
        "reference": sum(refs) / len(refs) if refs else None,
        "rounds": sum(r["rounds"] for r in rows) / n,
        "borrowed": sum(r["borrowed"] for r in rows) / n,
        "stops": dict(Counter(r["stop"] for r in rows)),
    }


def _parse(item: str) -> tuple[str, Any]:
    key, _, raw = item.partition("=")
    try:
        return key, json.loads(raw)
    except json.JSONDecodeError:
        return key, raw


def render(cells: list[dict[str, Any]]) -> str:
    lines = [
        "| scenario | strategy | mode | N | accuracy | samples/problem | tokens/problem | "
        "reference | rounds | stops |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for c in cells:
        ref = "" if c["reference"] is None else f"{c['reference']:.1f}"
        stops = ", ".join(f"{k} {v}" for k, v in sorted(c["stops"].items()))
        lines.append(
            f"| {c['scenario']} | {c['strategy']} | {c['mode']} | {c['budget']} | "
            f"{c['accuracy']:.3f} | {c['samples']:.1f} | {c['tokens']:.0f} | {ref} | "
            f"{c['rounds']:.2f} | {stops} |"
        )
    return "\n".join(lines)


COLORS = {
    "best_of_n": "#1f77b4",
    "rebase": "#ff7f0e",
    "dora": "#2ca02c",
    "particle_filtering": "#d62728",
}


def svg(cells: list[dict[str, Any]], scenario: str) -> str:
    """Accuracy against mean samples per problem (log scale) for one scenario, as SVG.

    Lines: fixed N; filled dots: adaptive with the pool; hollow dots: adaptive alone.
    """
    rows = [c for c in cells if c["scenario"] == scenario]
    w, h, left, bottom, top, right = 560, 360, 50, 40, 20, 150
    xs = [math.log2(max(c["samples"], 1.0)) for c in rows]
    x0, x1 = math.floor(min(xs)), math.ceil(max(xs))
    y0 = math.floor(min(c["accuracy"] for c in rows) * 10) / 10
    y1 = min(1.0, math.ceil(max(c["accuracy"] for c in rows) * 10) / 10)

    def px(samples: float) -> float:
        return left + (math.log2(max(samples, 1.0)) - x0) / max(x1 - x0, 1) * (w - left - right)

    def py(acc: float) -> float:
        return h - bottom - (acc - y0) / max(y1 - y0, 1e-9) * (h - top - bottom)

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" '
        'font-family="sans-serif" font-size="11">',
        f'<rect width="{w}" height="{h}" fill="white"/>',
        f'<text x="{left}" y="14">{scenario}: accuracy vs mean samples per problem</text>',
    ]
    for e in range(x0, x1 + 1):
        x = px(2.0**e)
        out.append(f'<line x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{h - bottom}" stroke="#ddd"/>')
        out.append(f'<text x="{x:.1f}" y="{h - bottom + 14}" text-anchor="middle">{2**e}</text>')
    steps = round((y1 - y0) / 0.1)
    for k in range(steps + 1):
        y = py(y0 + 0.1 * k)
        out.append(f'<line x1="{left}" y1="{y:.1f}" x2="{w - right}" y2="{y:.1f}" stroke="#ddd"/>')
        out.append(
            f'<text x="{left - 4}" y="{y + 4:.1f}" text-anchor="end">{y0 + 0.1 * k:.1f}</text>'
        )
    out.append(f'<text x="{(w - right) / 2}" y="{h - 6}">samples per problem (log)</text>')
    for i, strategy in enumerate(dict.fromkeys(c["strategy"] for c in rows)):
        color = COLORS.get(strategy, "#555")
        fixed = sorted(
            (c for c in rows if c["strategy"] == strategy and c["mode"] == "fixed"),
            key=lambda c: c["samples"],
        )
        points = " ".join(f"{px(c['samples']):.1f},{py(c['accuracy']):.1f}" for c in fixed)
        out.append(f'<polyline points="{points}" fill="none" stroke="{color}" stroke-width="2"/>')
        for c in rows:
            if c["strategy"] != strategy:
                continue
            fill = {"fixed": color, "adaptive+pool": color, "adaptive": "white"}[c["mode"]]
            r = 3 if c["mode"] == "fixed" else 5
            out.append(
                f'<circle cx="{px(c["samples"]):.1f}" cy="{py(c["accuracy"]):.1f}" r="{r}" '
                f'fill="{fill}" stroke="{color}" stroke-width="1.5"><title>{strategy} '
                f"{c['mode']} N={c['budget']}: {c['accuracy']:.3f} at {c['samples']:.1f}"
                "</title></circle>"
            )
        ly = top + 16 * i + 10
        out.append(
            f'<line x1="{w - right + 10}" y1="{ly}" x2="{w - right + 30}" y2="{ly}" '
            f'stroke="{color}" stroke-width="2"/>'
        )
        out.append(f'<text x="{w - right + 34}" y="{ly + 4}">{strategy}</text>')
    ly = top + 16 * 5 + 10
    out.append(f'<text x="{w - right + 10}" y="{ly}">line: fixed N</text>')
    out.append(f'<text x="{w - right + 10}" y="{ly + 16}">filled dot: adaptive+pool</text>')
    out.append(f'<text x="{w - right + 10}" y="{ly + 32}">hollow dot: adaptive</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


async def main_async(args: argparse.Namespace) -> list[dict[str, Any]]:
    cells = []
    for scenario in args.scenarios:
        problems = world_problems(scenario, args.problems, args.seed)
        for strategy in args.strategies:
            plan = [("fixed", b) for b in args.fixed] + [
                (m, b) for m in args.modes for b in args.adaptive
            ]
            for mode, budget in plan:
                started = time.perf_counter()
                cell = await run_cell(
                    strategy,
                    budget,
                    mode,
                    problems,
                    seed=args.seed,
                    concurrency=args.concurrency,
                    confidence=args.confidence,
                    extra=dict(_parse(kv) for kv in args.set),
                )
                cell.update(scenario=scenario, strategy=strategy, mode=mode, budget=budget)
                cell["seconds"] = round(time.perf_counter() - started, 1)
                cells.append(cell)
                print(
                    f"{scenario:>13} {strategy:>18} {mode:>13} N={budget:<3} "
                    f"acc={cell['accuracy']:.3f} samples={cell['samples']:.1f} "
                    f"tokens={cell['tokens']:.0f} ({cell['seconds']}s)",
                    file=sys.stderr,
                    flush=True,
                )
    return cells


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problems", type=int, default=200)
    parser.add_argument("--scenarios", nargs="+", default=SCENARIOS)
    parser.add_argument("--strategies", nargs="+", default=STRATEGIES)
    parser.add_argument("--fixed", type=int, nargs="*", default=[4, 16, 64])
    parser.add_argument("--adaptive", type=int, nargs="*", default=[4, 16])
    parser.add_argument("--modes", nargs="+", default=["adaptive", "adaptive+pool"])
    parser.add_argument("--confidence", type=float, default=0.95)
    parser.add_argument(
        "--set", action="append", default=[], help="another adaptive setting, KEY=VALUE"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--json", help="also write the cells as JSON to this path")
    parser.add_argument("--plot-dir", help="write one SVG per scenario (adaptive_<s>.svg) here")
    parser.add_argument("--from-json", nargs="+", help="render these results instead of running")
    args = parser.parse_args()
    os.environ.setdefault("LANGSMITH_TRACING", "false")
    started = time.perf_counter()
    if args.from_json:  # a later file's cell replaces an earlier one's (same row)
        merged: dict[tuple[str, str, str, int], dict[str, Any]] = {}
        for path in args.from_json:
            with open(path, encoding="utf-8") as fh:
                for c in json.load(fh)["cells"]:
                    merged[(c["scenario"], c["strategy"], c["mode"], c["budget"])] = c
        order = {m: i for i, m in enumerate(MODES)}
        cells = sorted(
            merged.values(),
            key=lambda c: (
                SCENARIOS.index(c["scenario"]) if c["scenario"] in SCENARIOS else 99,
                STRATEGIES.index(c["strategy"]) if c["strategy"] in STRATEGIES else 99,
                order.get(c["mode"], 9),
                c["budget"],
            ),
        )
    else:
        cells = asyncio.run(main_async(args))
    if args.plot_dir:
        for scenario in dict.fromkeys(c["scenario"] for c in cells):
            path = os.path.join(args.plot_dir, f"adaptive_{scenario}.svg")
            with open(path, "w", encoding="utf-8") as fh:
                fh.write(svg(cells, scenario))
    print(f"\n{args.problems} simulated problems, seed={args.seed}, ", end="")
    print(f"{time.perf_counter() - started:.0f}s\n")
    print(render(cells))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump({"args": vars(args), "cells": cells}, fh, indent=2)


if __name__ == "__main__":
    main()
