"""`langgraph-tts`: solve a problem, evaluate a dataset, fit a compute-optimal strategy table,
run the demo, or serve the simulator.

Errors a user can cause (bad settings, unreachable servers, unknown datasets) end with one line
on stderr and a non-zero exit code, never a traceback (`--debug` shows one).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["build_parser", "main"]

EXIT_USAGE = 2
EXIT_FAILURE = 1


def _strategy_help() -> str:
    """`name (summary)` of every registered strategy, for --help."""
    from .strategies import get_strategy, strategy_names

    return "; ".join(f"{n}: {get_strategy(n).summary}" for n in strategy_names())


def _model_flags(parser: argparse.ArgumentParser, *, strategy: bool = True) -> None:
    g = parser.add_argument_group("models (environment variables in brackets)")
    g.add_argument("--base-url", help="policy server, OpenAI-style …/v1 [LANGGRAPH_TTS_BASE_URL]")
    g.add_argument("--model", help="policy model name [LANGGRAPH_TTS_MODEL]")
    g.add_argument("--prm-url", help="PRM server root; it serves /pooling [LANGGRAPH_TTS_PRM_URL]")
    g.add_argument("--prm-model", help="PRM model name [LANGGRAPH_TTS_PRM_MODEL]")
    g.add_argument("--embed-url", help="embedding server, …/v1 [LANGGRAPH_TTS_EMBED_URL]")
    g.add_argument("--embed-model", help="embedding model name [LANGGRAPH_TTS_EMBED_MODEL]")
    g.add_argument(
        "--embedder",
        dest="embedder_kind",
        choices=["auto", "server", "local", "hashing"],
        help="where DORA's embeddings come from",
    )
    g.add_argument("--api-key", help="API key for the servers [LANGGRAPH_TTS_API_KEY]")
    s = parser.add_argument_group("strategy")
    if strategy:
        s.add_argument(
            "--strategy",
            default="dora",
            help=f"{_strategy_help()} (default: dora)",
        )
        s.add_argument("--budget", type=int, default=16, help="rollout budget N (default: 16)")
        s.add_argument(
            "--adaptive",
            action="store_true",
            default=None,
            help="N becomes an average: start small, grow while the vote is uncertain, stop "
            "when it is decided (docs/adaptive.md)",
        )
        s.add_argument(
            "--table",
            help="strategy table (JSON) of --strategy compute_optimal, written by calibrate",
        )
    s.add_argument("--seed", type=int, help="sampling seed")
    s.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="any other setting, e.g. --set tau=0.3 --set rebase_temperature=0.2 "
        "(see docs/configuration.md)",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="langgraph-tts",
        description="Test-time scaling for math reasoning on vLLM servers, as LangGraph graphs.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("solve", help="solve one problem and print the answer")
    p.add_argument("problem", help="the problem text")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")
    _model_flags(p)

    e = sub.add_parser("eval", help="evaluate a strategy on a dataset")
    e.add_argument(
        "--dataset",
        required=True,
        help="math500, aime24, aime25, amc23, gsm8k, a JSONL path, or sim:<scenario>[:<seed>] "
        "(simulated problems; serve them with sim-server --scenario <scenario>)",
    )
    e.add_argument("--out", required=True, type=Path, help="output directory")
    e.add_argument("--limit", type=int, help="first K problems only")
    e.add_argument("--concurrency", type=int, default=32, help="problems in flight (default: 32)")
    e.add_argument("--no-resume", action="store_true", help="start over instead of resuming")
    e.add_argument("--quiet", action="store_true", help="no progress bar")
    _model_flags(e)

    c = sub.add_parser(
        "calibrate",
        help="fit a compute-optimal strategy table (Snell et al.) on a validation set",
        description="Estimate every problem's difficulty from k PRM-scored samples, evaluate "
        "every candidate strategy at every budget (resumable runs), bin the difficulty into "
        "quantiles and pick the best strategy per bin and budget with 2-fold cross-validation.",
    )
    c.add_argument(
        "--dataset",
        required=True,
        help="validation set: math500, aime24, aime25, amc23, gsm8k, a JSONL path, or "
        "sim:<scenario>[:<seed>]",
    )
    c.add_argument("--out", required=True, type=Path, help="the table to write (JSON)")
    c.add_argument("--budgets", default="4,16", help="budgets N to fit (default: 4,16)")
    c.add_argument(
        "--strategies",
        default="best_of_n,beam,dvts",
        help="candidates: best_of_n, beam (M=sqrt(N) and M=4), dvts (M=4), rebase, dora "
        "(default: best_of_n,beam,dvts)",
    )
    c.add_argument("--runs", type=Path, help="directory of the runs (default: <out>-runs)")
    c.add_argument("--limit", type=int, help="first K problems only")
    c.add_argument("--bins", type=int, default=5, help="difficulty bins (default: 5)")
    c.add_argument(
        "--difficulty",
        choices=["predicted", "oracle"],
        default="predicted",
        help="bin on the mean PRM score (predicted, routable) or on the pass rate (oracle)",
    )
    c.add_argument(
        "--difficulty-samples", type=int, help="k samples per difficulty estimate (default: 8)"
    )
    c.add_argument("--cv-seed", type=int, default=0, help="seed of the 2-fold CV split")
    c.add_argument("--concurrency", type=int, default=32, help="problems in flight (default: 32)")
    c.add_argument("--no-resume", action="store_true", help="start over instead of resuming")
    c.add_argument("--quiet", action="store_true", help="no progress on stderr")
    _model_flags(c, strategy=False)

    from .strategies import strategy_names

    d = sub.add_parser("demo", help="run a strategy on the built-in simulator (no GPU)")
    d.add_argument(
        "--strategy", default="dora", choices=strategy_names(), help="strategy (default: dora)"
    )
    d.add_argument("--budget", type=int, default=16, help="budget N (default: 16)")
    d.add_argument("--seed", type=int, default=7, help="world and sampling seed (default: 7)")
    d.add_argument(
        "--scenario",
        default="popular_worse",
        help="simulated world: default, easy, hard, popular_worse (default: popular_worse)",
    )
    d.add_argument(
        "--problem",
        type=int,
        default=16,
        help="number of the simulated problem, as its text says (default: 16)",
    )
    d.add_argument("--table", help="strategy table (JSON) for --strategy compute_optimal")
    d.add_argument("--debug", action="store_true")

    sim = sub.add_parser("sim-server", help="serve the vLLM-compatible simulator")
    from .sim.server import add_arguments

    add_arguments(sim)
    sim.add_argument("--debug", action="store_true")
    return parser


def _parse_value(raw: str) -> Any:
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        return raw


def context_from_args(args: argparse.Namespace) -> Any:
    """A validated solve context from flags, `--set` overrides and environment variables."""
    from .context import SolveContext
    from .errors import ConfigError

    values: dict[str, Any] = {}
    for flag in (
        "strategy",
        "budget",
        "table",
        "difficulty_samples",
        "base_url",
        "model",
        "prm_url",
        "prm_model",
        "embed_url",
        "embed_model",
        "embedder_kind",
        "api_key",
        "seed",
        "adaptive",
    ):
        value = getattr(args, flag, None)
        if value is not None:
            values[flag] = value
    for item in args.overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--set expects KEY=VALUE, got {item!r}")
        values[key.strip().replace("-", "_")] = _parse_value(raw)
    return SolveContext(**values)


def _format_validation(err: Any) -> str:
    from .settings import format_validation

    return format_validation(err)


def _progress_printer(quiet: bool) -> Any:
    if quiet:
        return None

    def show(event: dict[str, Any]) -> None:
        if event.get("event") == "iteration":
            print(
                f"  iteration {event['iteration']:>2}: {event['active']:>3} active, "
                f"{event['finished']:>3} finished, {event['completion_tokens']} tokens",
                file=sys.stderr,
            )
        elif event.get("event") == "compute_optimal":
            print(
                f"  difficulty {event['difficulty']:.3f} -> bin {event['bin']}/{event['bins']}: "
                f"{event['chosen']} (fitted at N={event['table_budget']})",
                file=sys.stderr,
            )
        elif event.get("event") == "subproblem":
            print(
                f"  sub-problem {event.get('index')}: difficulty {event.get('difficulty')}, "
                f"{event.get('mode')} -> {event.get('answer')}",
                file=sys.stderr,
            )

    return show


async def _check(ctx: Any) -> None:
    """Preflight: the strategy table (compute_optimal) before the servers, so a bad file costs
    nothing; the embedding server too if the table may pick DORA."""
    from .context import with_overrides
    from .errors import ConfigError
    from .preflight import check_servers

    if ctx.strategy != "compute_optimal":
        if ctx.table is not None:
            raise ConfigError("--table is only used by --strategy compute_optimal")
        await check_servers(ctx)
        return
    from .compute_optimal.graph import resolve_table

    table = resolve_table(ctx)
    table.budget_for(ctx.budget)
    await check_servers(with_overrides(ctx, strategy="dora") if "dora" in table.strategies else ctx)


async def _solve(args: argparse.Namespace) -> int:
    from .solve import Solver

    ctx = context_from_args(args)
    if not args.problem.strip():
        from .errors import ConfigError

        raise ConfigError("the problem is empty")
    await _check(ctx)
    solver = Solver(ctx)
    out = await solver(args.problem, on_event=_progress_printer(args.quiet or args.json))
    result = out.get("result") or {}
    if args.json:
        payload = {
            "answer": out.get("answer"),
            "strategy": ctx.strategy,
            "budget": ctx.budget,
            "verifier": result.get("verifier"),
            "ledger": out.get("ledger"),
            "result": result,
        }
        print(json.dumps(payload, ensure_ascii=False))
    else:
        print(out.get("answer") if out.get("answer") is not None else "(no answer)")
        if result.get("verifier") == "generative_verifier":
            print(
                "note: no PRM configured; the policy judged the solutions (generative verifier)",
                file=sys.stderr,
            )
    return 0


async def _eval(args: argparse.Namespace) -> int:
    from .evaluation import load_dataset, run_eval
    from .solve import Solver

    ctx = context_from_args(args)
    problems = load_dataset(args.dataset, limit=args.limit)
    await _check(ctx)
    solver = Solver(ctx)
    progress = None if args.quiet else _EvalProgress(len(problems))
    with progress or contextlib.nullcontext():
        summary = await run_eval(
            solver,
            problems,
            args.out,
            settings=ctx,
            dataset=args.dataset,
            concurrency=args.concurrency,
            resume=not args.no_resume,
            on_row=progress.update if progress else None,
        )
    print(
        f"{summary['strategy']} @ N={summary['budget']} on {args.dataset}: accuracy "
        f"{summary['accuracy']:.3f} over {summary['n']} problems ({summary['errors']} errors), "
        f"{summary['mean_completion_tokens']:.0f} completion tokens and "
        f"{summary['mean_samples']:.1f} samples per problem -> {args.out}/summary.json"
    )
    return 0


def _names(raw: str, flag: str) -> list[str]:
    from .errors import ConfigError

    names = [x.strip() for x in raw.split(",") if x.strip()]
    if not names:
        raise ConfigError(f"{flag} needs a comma-separated list, got {raw!r}")
    return names


async def _calibrate(args: argparse.Namespace) -> int:
    from .compute_optimal.calibrate import calibrate
    from .compute_optimal.table import candidates_for, format_table
    from .compute_optimal.tablefile import write_table
    from .errors import ConfigError
    from .evaluation import load_dataset
    from .preflight import check_servers

    budgets = _names(args.budgets, "--budgets")
    if not all(b.isdigit() and int(b) > 0 for b in budgets):
        raise ConfigError(f"--budgets must be positive integers such as 4,16, got {args.budgets!r}")
    strategies = _names(args.strategies, "--strategies")
    candidates_for(strategies, 1)  # unknown names fail before any request
    if args.bins < 1:
        raise ConfigError(f"--bins must be at least 1, got {args.bins}")
    ctx = context_from_args(args)
    problems = load_dataset(args.dataset, limit=args.limit)
    from .context import with_overrides

    await check_servers(with_overrides(ctx, strategy="dora") if "dora" in strategies else ctx)
    runs = args.runs or args.out.with_name(args.out.stem + "-runs")

    def progress(label: str, summary: dict[str, Any]) -> None:
        print(
            f"  {label}: accuracy {summary['accuracy']:.3f} over {summary['n']} problems "
            f"({summary['errors']} errors), {summary['mean_samples']:.1f} samples per problem",
            file=sys.stderr,
        )

    table = await calibrate(
        problems,
        ctx,
        runs,
        budgets=[int(b) for b in budgets],
        strategies=strategies,
        bins=args.bins,
        difficulty=args.difficulty,
        dataset=args.dataset,
        concurrency=args.concurrency,
        resume=not args.no_resume,
        seed=args.cv_seed,
        on_run=None if args.quiet else progress,
    )
    write_table(table, args.out)
    print(format_table(table))
    print(
        f"{table.difficulty} difficulty from k={table.difficulty_samples} samples, "
        f"{table.source.get('problems')} problems -> {args.out} (runs in {runs})"
    )
    return 0


class _EvalProgress:
    def __init__(self, total: int) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        self.progress = Progress(
            TextColumn("[bold]eval"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.description}"),
            TimeElapsedColumn(),
            transient=False,
        )
        self.task = self.progress.add_task("", total=total)
        self.correct = 0
        self.seen = 0

    def __enter__(self) -> _EvalProgress:
        self.progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.__exit__(None, None, None)

    def update(self, row: dict[str, Any]) -> None:
        self.seen += 1
        self.correct += bool(row.get("correct"))
        self.progress.update(
            self.task, advance=1, description=f"accuracy {self.correct / self.seen:.3f}"
        )


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `langgraph-tts`."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if getattr(args, "debug", False) else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    os.environ.setdefault("LANGSMITH_TRACING", os.environ.get("LANGSMITH_TRACING", "false"))
    from pydantic import ValidationError

    from .errors import ConfigError, TTSError

    try:
        if args.command == "sim-server":
            from .sim.server import run_from_args

            return run_from_args(args)
        if args.command == "demo":
            from .demo import run_demo

            return asyncio.run(run_demo(args))
        runners = {"solve": _solve, "eval": _eval, "calibrate": _calibrate}
        return asyncio.run(runners[args.command](args))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except ValidationError as err:
        if args.debug:
            raise
        print(f"langgraph-tts: {_format_validation(err)}", file=sys.stderr)
        return EXIT_USAGE
    except ConfigError as err:
        if args.debug:
            raise
        print(f"langgraph-tts: {err}", file=sys.stderr)
        return EXIT_USAGE
    except TTSError as err:
        if args.debug:
            raise
        print(f"langgraph-tts: {err}", file=sys.stderr)
        return EXIT_FAILURE
    except Exception as err:
        if args.debug:
            raise
        print(
            f"langgraph-tts: unexpected error: {type(err).__name__}: {err} (rerun with --debug)",
            file=sys.stderr,
        )
        return EXIT_FAILURE


if __name__ == "__main__":
    sys.exit(main())
