"""`langgraph-tts demo`: a strategy solving a simulated problem, start to finish, no GPU.

Starts the built-in simulator on a free loopback port, shows the problem's latent reasoning
directions (which the strategy cannot see), runs the prebuilt solve-math graph over HTTP,
streams its iterations, then shows where the rollouts went and the answer against the truth.
"""

from __future__ import annotations

import argparse
from collections import Counter, defaultdict
from typing import Any

from rich.console import Console
from rich.table import Table

from .context import SolveContext
from .errors import ConfigError
from .sim.server import SimConfig, start_server
from .sim.world import SimProblem, is_correct, make_problems, parse_solution
from .solve import Solver
from .state import path_text

__all__ = ["run_demo"]


def _world_table(problem: SimProblem) -> Table:
    table = Table(
        title="latent reasoning directions (hidden from the strategy; any step may also slip, "
        "which the PRM mostly sees)",
        title_justify="left",
    )
    table.add_column("#", justify="right")
    table.add_column("direction")
    table.add_column("policy picks it", justify="right")
    table.add_column("chains with its flaw", justify="right")
    table.add_column("P(correct)", justify="right")
    for i, d in enumerate(problem.directions):
        flawed = 1.0 - (1.0 - d.flaw) ** d.n_steps
        table.add_row(
            str(i), d.keyword, f"{d.popularity:.0%}", f"{flawed:.0%}" if d.flaw else "none",
            f"{d.p:.0%}",
        )  # fmt: skip
    return table


def _explored_table(problem: SimProblem, out: dict[str, Any]) -> Table:
    nodes = out.get("nodes") or []
    generated: Counter[int | None] = Counter()
    rollouts: Counter[int | None] = Counter()
    finished: dict[int | None, list[bool]] = defaultdict(list)
    completed = set(out.get("completed") or [])
    for node in nodes[1:]:
        direction = parse_solution(problem, path_text(nodes, node["id"])).direction
        generated[direction] += 1
        rollouts[direction] += node["rollouts"]
        if node["id"] in completed:
            finished[direction].append(is_correct(problem, node["answer"]))
    table = Table(title="what the search explored", title_justify="left")
    table.add_column("direction")
    table.add_column("steps generated", justify="right")
    table.add_column("rollouts allocated", justify="right")
    table.add_column("finished", justify="right")
    table.add_column("finished correct", justify="right")
    for key in sorted(generated, key=lambda k: (k is None, k)):
        name = problem.directions[key].keyword if key is not None else "(unparsed)"
        done = finished.get(key, [])
        table.add_row(name, str(generated[key]), str(rollouts[key]), str(len(done)), str(sum(done)))
    return table


async def run_demo(args: argparse.Namespace) -> int:
    """Run the demo; returns the process exit code."""
    console = Console(highlight=False, width=100)
    config = SimConfig(scenario=args.scenario, seed=args.seed)
    with start_server(config) as server:
        if args.problem < 1:
            raise ConfigError(f"--problem counts from 1, got {args.problem}")
        problem = make_problems(args.problem, scenario=args.scenario, seed=args.seed)[-1]
        ctx = SolveContext(
            table=args.table,
            strategy=args.strategy,
            budget=args.budget,
            seed=args.seed,
            base_url=server.base_url,
            model=config.policy_model,
            prm_url=server.url,
            prm_model=config.prm_model,
            prm_template="qwen2.5",
            embed_url=server.base_url,
            embed_model=config.embed_model,
            embedder_kind="server",
        )
        console.print(
            f"[bold]langgraph-tts demo[/] — built-in simulator on {server.url} "
            f"(vLLM wire protocol, scenario {args.scenario!r}, no GPU)"
        )
        console.print(f"[bold]problem:[/] {problem.text}")
        console.print(_world_table(problem))
        console.print(f"[bold]{args.strategy}[/] with budget N={args.budget}:")

        def show(event: dict[str, Any]) -> None:
            if event.get("event") == "iteration":
                console.print(
                    f"  iteration {event['iteration']:>2}: {event['active']:>3} active, "
                    f"{event['finished']:>3} finished, {event['samples']:>4} samples, "
                    f"{event['completion_tokens']:>6} tokens"
                )
            elif event.get("event") == "subproblem":
                console.print(
                    f"  sub-problem {event.get('index')}: difficulty {event.get('difficulty')}"
                    f" -> {event.get('mode')}, answer {event.get('answer')}"
                )

        out = await Solver(ctx)(problem.text, on_event=show)
    if out.get("nodes"):
        console.print(_explored_table(problem, out))
    result, ledger = out.get("result") or {}, out.get("ledger") or {}
    votes = ", ".join(
        f"{g['answer']} (x{g['count']}, weight {g['weight']:.2f})"
        for g in result.get("groups", [])[:4]
    )
    if votes:
        console.print(f"[bold]vote[/] ({result.get('vote')}): {votes}")
    answer = out.get("answer")
    verdict = "[green]correct[/]" if is_correct(problem, answer) else "[red]wrong[/]"
    console.print(f"[bold]answer:[/] {answer} — {verdict} (truth: {problem.answer})")
    console.print(
        f"[bold]ledger:[/] {ledger.get('samples', 0)} samples in "
        f"{ledger.get('policy_requests', 0)} policy requests, "
        f"{ledger.get('completion_tokens', 0)} completion tokens, "
        f"{ledger.get('prm_requests', 0)} PRM and {ledger.get('embed_requests', 0)} embedding "
        f"requests, {ledger.get('flops', 0.0):.2e} FLOPs, {ledger.get('wall_s', 0.0):.2f} s"
    )
    other = "rebase" if args.strategy != "rebase" else "dora"
    console.print(
        f"next: `langgraph-tts demo --strategy {other}` for the same problem with "
        f"{other.upper()}; README.md for real vLLM servers."
    )
    return 0
