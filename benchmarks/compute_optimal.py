"""Compute-optimal selection (per-bin strategy and budget) against every single strategy.

Snell et al.'s headline: choosing the strategy *and* the budget per difficulty bin matches
best-of-N with about 4x less compute. This reproduces the experiment on a simulated world:
`calibrate` fits the table on the first half of the problems (every candidate θ at every
budget, k-sample difficulty estimates, per-bin budget plans for each target), then the second,
held-out half is run with every candidate θ at every budget (what a user could run instead)
and with the compute-optimal graph at each target budget. Everything goes through the
package's own `calibrate`, `run_eval` and graphs, with the simulator's in-process clients.

    python benchmarks/compute_optimal.py --problems 400 --world default \
        --json docs/benchmarks/compute_optimal.json --plot docs/benchmarks/compute_optimal.png
    python benchmarks/compute_optimal.py --from-json docs/benchmarks/compute_optimal.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _sim import world_problems  # benchmarks/_sim.py

from langgraph_tts.compute_optimal.calibrate import calibrate, run_name
from langgraph_tts.compute_optimal.table import (
    StrategyTable,
    candidates_for,
    format_plans,
    format_table,
)
from langgraph_tts.context import solve_context_model, with_overrides
from langgraph_tts.evaluation import read_results, run_eval
from langgraph_tts.sim.engine import SimEngine
from langgraph_tts.sim.inprocess import SimEmbedder, SimPolicy, SimPRM
from langgraph_tts.sim.server import SimConfig
from langgraph_tts.sim.world import SimProblem, problem_for
from langgraph_tts.solve import Solver


class _MixedEngine(SimEngine):
    """The simulator with each problem in its own scenario's world (for `--world mixed`)."""

    def __init__(self, config: SimConfig, worlds: dict[str, str]) -> None:
        super().__init__(config)
        self.worlds = worlds

    def problem(self, text: str) -> SimProblem:
        world = self.worlds.get(text.strip(), self.config.scenario)
        return problem_for(text, scenario=world, seed=self.config.seed)


def _clients(world: str, seed: int, problems: list[tuple[str, SimProblem]]) -> dict[str, Any]:
    """In-process policy, PRM and embedder sharing one engine."""
    if world == "mixed":
        worlds = {p.text.strip(): w for w, p in problems}
        if len(worlds) != len(problems):
            raise SystemExit("two mixed problems share a text")
        engine: SimEngine = _MixedEngine(SimConfig(seed=seed), worlds)
    else:
        engine = SimEngine(SimConfig(scenario=world, seed=seed))  # type: ignore[arg-type]
    return {
        "policy": SimPolicy(engine=engine),
        "prm": SimPRM(engine=engine),
        "embedder": SimEmbedder(engine=engine),
    }


def outcomes(rows: dict[str, Any], ids: list[str]) -> str:
    """Per problem of `ids`, in order: 1 right, 0 wrong, - no row or an error."""
    marks = (rows.get(i) for i in ids)
    return "".join("-" if r is None or r.get("error") else "01"[bool(r["correct"])] for r in marks)


def _row(label: str, kind: str, budget: int, run_dir: Path, ids: list[str]) -> dict[str, Any]:
    """A held-out run's summary and its per-problem outcomes (for the paired comparison)."""
    summary = json.loads((run_dir / "summary.json").read_text())
    rows = read_results(run_dir / "results.jsonl")
    return {
        "label": label,
        "kind": kind,
        "budget": budget,
        "accuracy": round(summary["accuracy"], 4),
        "samples": round(summary["mean_samples"], 2),
        "tokens": round(summary["mean_completion_tokens"], 1),
        "n": summary["n"],
        "correct": outcomes(rows, ids),
    }


async def run(args: argparse.Namespace, out: Path) -> dict[str, Any]:
    """Calibrate on the first half, evaluate candidates and compute-optimal on the second."""
    sim = world_problems(args.world, args.problems, args.seed)
    clients = _clients(args.world, args.seed, sim)
    problems = [{"id": p.id, "problem": p.text, "answer": p.answer} for _, p in sim]
    half = args.validation if args.validation is not None else len(problems) // 2
    if not 0 < half < len(problems):
        raise SystemExit(f"--validation must be between 1 and {len(problems) - 1}")
    validation, held_out = problems[:half], problems[half:]
    ids = [p["id"] for p in held_out]
    ctx = with_overrides(
        solve_context_model()(), seed=args.seed, difficulty_samples=args.difficulty_samples
    )
    common = {
        "budgets": args.budgets,
        "strategies": args.strategies,
        "concurrency": args.concurrency,
        "cost_metric": args.cost,
        **clients,
    }

    def say(label: str, summary: dict[str, Any]) -> None:
        print(f"  {label}: {summary['accuracy']:.3f}", file=sys.stderr, flush=True)

    started = time.perf_counter()
    table = await calibrate(
        validation,
        ctx,
        out / "validation",
        targets=args.targets,
        bon_pool=args.bon_pool,
        on_run=say,
        **common,
    )
    print(format_table(table), format_plans(table), sep="\n\n", file=sys.stderr)
    # held out: every candidate at every budget (and the difficulty run = best-of-N at k)
    await calibrate(held_out, ctx, out / "held_out", on_run=say, **common)
    rows = []
    for budget in args.budgets:
        for choice in candidates_for(args.strategies, budget):
            rows.append(
                _row(
                    choice.name, "single", budget, out / "held_out" / run_name(choice, budget), ids
                )
            )
    for budget in args.reference_budgets:  # more points on best-of-N's curve
        ref = with_overrides(ctx, strategy="best_of_n", budget=budget)
        ref_dir = out / "reference" / f"best_of_n-n{budget}"
        await run_eval(
            Solver(ref, **clients), held_out, ref_dir, settings=ref, concurrency=args.concurrency
        )
        rows.append(_row("best_of_n", "single", budget, ref_dir, ids))
    for target in [p.target for p in table.plans]:
        for plans in (True, False):
            co = with_overrides(
                ctx, strategy="compute_optimal", table=table, budget=target, bin_budgets=plans
            )
            kind = f"{args.cost}-pool{args.bon_pool}" if args.bon_pool else args.cost
            run_dir = out / kind / f"compute_optimal-n{target}{'' if plans else '-fixed'}"
            summary = await run_eval(
                Solver(co, **clients), held_out, run_dir, settings=co, concurrency=args.concurrency
            )
            label = "compute_optimal" if plans else "compute_optimal (θ per bin, N fixed)"
            rows.append(_row(label, "compute_optimal", target, run_dir, ids))
            say(f"{label} @ {target}", summary)
    return {
        "world": args.world,
        "problems": len(problems),
        "validation": half,
        "difficulty_samples": args.difficulty_samples,
        "cost": args.cost,
        "bon_pool": args.bon_pool,
        "held_out_ids": ids,
        "seconds": round(time.perf_counter() - started, 1),
        "table": table.model_dump(mode="json"),
        "rows": rows,
    }


def _bon_cost_for(accuracy: float, rows: list[dict[str, Any]], key: str) -> float | None:
    """`key` (samples or tokens) best-of-N needs for `accuracy`: the cheapest measured budget
    reaching it, log-linearly interpolated from the budget below; None if none reaches it."""
    bon = sorted((r[key], r["accuracy"]) for r in rows if r["label"] == "best_of_n")
    below: tuple[float, float] | None = None
    for cost, acc in bon:
        if acc >= accuracy:
            if below is None or below[1] >= acc:
                return cost
            t = (accuracy - below[1]) / (acc - below[1])
            return math.exp(math.log(below[0]) + t * (math.log(cost) - math.log(below[0])))
        if below is None or acc > below[1]:
            below = (cost, acc)
    return None


def _ratio(row: dict[str, Any], rows: list[dict[str, Any]], key: str) -> str:
    need = _bon_cost_for(row["accuracy"], rows, key)
    if need is None:
        return "beyond best-of-N"
    return f"{need:.0f} ({need / row[key]:.1f}x)"


def best_single_within(row: dict[str, Any], rows: list[dict[str, Any]], key: str) -> dict | None:
    """The most accurate single-strategy row that spent no more `key` per problem than `row`."""
    within = [r for r in rows if r["kind"] == "single" and r[key] <= row[key]]
    return max(within, key=lambda r: (r["accuracy"], -r[key]), default=None)


def envelope_at(cost: float, rows: list[dict[str, Any]], key: str) -> float | None:
    """The single strategies' best accuracy at mean cost `cost`: their upper envelope (best
    accuracy at no more cost), log-linearly interpolated towards the next point that improves
    on it. None below the cheapest single run."""
    points = sorted((r[key], r["accuracy"]) for r in rows if r["kind"] == "single")
    envelope: list[tuple[float, float]] = []
    for c, a in points:
        if not envelope or a > envelope[-1][1]:
            envelope.append((c, a))
    below = [p for p in envelope if p[0] <= cost]
    if not below:
        return None
    (c0, a0), above = below[-1], envelope[len(below) :]
    if not above or c0 <= 0 or cost <= c0:
        return a0
    c1, a1 = above[0]
    return a0 + (a1 - a0) * math.log(cost / c0) / math.log(c1 / c0)


def paired_difference(
    a: str, b: str, *, resamples: int = 4000, seed: int = 0
) -> tuple[float, float, float]:
    """Accuracy of `a` minus `b` (`outcomes` strings) on the problems both answered, with a
    95 % paired bootstrap interval (problems resampled, a problem's two outcomes together)."""
    import numpy as np

    both = [(x, y) for x, y in zip(a, b, strict=True) if "-" not in (x, y)]
    diff = np.array([int(x) - int(y) for x, y in both], dtype=float)
    rng = np.random.default_rng(seed)
    means = diff[rng.integers(0, len(diff), size=(resamples, len(diff)))].mean(axis=1)
    low, high = np.quantile(means, [0.025, 0.975])
    return float(diff.mean()), float(low), float(high)


def against_best_single(result: dict[str, Any]) -> list[str]:
    """Markdown rows: each compute-optimal run against the best single strategy that spent no
    more, in the plans' cost metric, with the paired difference."""
    key = "tokens" if result["cost"] == "completion_tokens" else "samples"
    lines = [
        f"| compute-optimal | {key}/problem | accuracy | best single at no more {key} | "
        "accuracy | difference [95 % paired bootstrap] | single strategies' envelope at this cost |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in result["rows"]:
        if row["label"] != "compute_optimal" or "correct" not in row:
            continue
        best = best_single_within(row, result["rows"], key)
        if best is None:
            lines.append(
                f"| N = {row['budget']} | {row[key]:.1f} | {row['accuracy']:.3f} | none | | | |"
            )
            continue
        d, low, high = paired_difference(row["correct"], best["correct"])
        envelope = envelope_at(row[key], result["rows"], key)
        lines.append(
            f"| N = {row['budget']} | {row[key]:.1f} | {row['accuracy']:.3f} | "
            f"{best['label']}@{best['budget']} ({best[key]:.1f}) | {best['accuracy']:.3f} | "
            f"{d:+.3f} [{low:+.3f}, {high:+.3f}] | {envelope:.3f} |"
        )
    return lines


def render(result: dict[str, Any]) -> str:
    """Markdown: the plans, then every held-out row sorted by samples."""
    table = StrategyTable.model_validate(result["table"])
    rows = sorted(result["rows"], key=lambda r: (r["samples"], r["label"]))
    lines = [format_plans(table), ""]
    lines += [
        "| run | N | accuracy | samples/problem | tokens/problem | best-of-N needs: samples "
        "| tokens |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['label']} | {r['budget']} | {r['accuracy']:.3f} | {r['samples']:.1f} | "
            f"{r['tokens']:.0f} | {_ratio(r, result['rows'], 'samples')} | "
            f"{_ratio(r, result['rows'], 'tokens')} |"
        )
    if any("correct" in r for r in result["rows"]):
        lines += ["", *against_best_single(result)]
    return "\n".join(lines)


def _held_out(result: dict[str, Any]) -> int:
    return int(result["problems"]) - int(result.get("validation", result["problems"] // 2))


def plot(result: dict[str, Any], path: Path) -> None:
    """Accuracy against samples and tokens per problem: one line per strategy, CO as stars."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True)
    by_label: dict[str, list[dict[str, Any]]] = {}
    for r in result["rows"]:
        by_label.setdefault(r["label"], []).append(r)
    for ax, key, unit in zip(
        axes, ("samples", "tokens"), ("samples", "completion tokens"), strict=True
    ):
        for label, rows in by_label.items():
            rows = sorted(rows, key=lambda r: r[key])
            xs, ys = [r[key] for r in rows], [r["accuracy"] for r in rows]
            if label == "compute_optimal":
                ax.plot(xs, ys, "k*-", markersize=11, label=label, zorder=5)
            elif label.startswith("compute_optimal"):
                ax.plot(xs, ys, "kx--", label=label)
            else:
                ax.plot(xs, ys, "o-", alpha=0.75, label=label)
        ax.set_xscale("log")
        ax.set_xlabel(f"mean {unit} per problem (log scale)")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("held-out accuracy")
    axes[1].legend(fontsize=7, loc="lower right")
    fig.suptitle(
        f"sim:{result['world']}, {_held_out(result)} held-out problems, "
        f"k={result['difficulty_samples']}, plans in {result['cost']}"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--world", default="default", help="simulator scenario, or mixed (half easy, half hard)"
    )
    parser.add_argument("--problems", type=int, default=400, help="half calibrate, half held out")
    parser.add_argument(
        "--validation", type=int, help="calibrate on the first VALIDATION problems (default: half)"
    )
    parser.add_argument("--budgets", type=int, nargs="+", default=[4, 16, 64])
    parser.add_argument("--targets", type=int, nargs="+", default=[8, 16, 32, 64])
    parser.add_argument(
        "--strategies", nargs="+", default=["best_of_n", "beam", "dvts", "rebase", "dora"]
    )
    parser.add_argument(
        "--reference-budgets",
        type=int,
        nargs="*",
        default=[8, 32, 128, 256],
        help="extra best-of-N budgets run on the held-out half only (its curve)",
    )
    parser.add_argument("--difficulty-samples", type=int, default=8)
    parser.add_argument("--cost", choices=["samples", "completion_tokens"], default="samples")
    parser.add_argument(
        "--bon-pool", type=int, help="calibrate best-of-N from one pool of this many samples"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--runs", type=Path, help="keep the runs here (default: a temp dir)")
    parser.add_argument("--json", type=Path, help="write the result here")
    parser.add_argument("--plot", type=Path, help="write the figure (PNG) here")
    parser.add_argument("--from-json", type=Path, help="render a saved result instead")
    args = parser.parse_args()
    os.environ.setdefault("LANGSMITH_TRACING", "false")
    if args.from_json:
        result = json.loads(args.from_json.read_text())
    elif args.runs:
        result = asyncio.run(run(args, args.runs))
    else:
        with tempfile.TemporaryDirectory() as tmp:
            result = asyncio.run(run(args, Path(tmp)))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n")
    if args.plot:
        plot(result, args.plot)
    print(render(result))


if __name__ == "__main__":
    main()
