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
from typing import Any, NoReturn

__all__ = ["build_parser", "main"]

EXIT_USAGE = 2
EXIT_FAILURE = 1


def _strategy_help() -> str:
    """`name (summary)` of every registered strategy, for --help."""
    from .strategies import get_strategy, strategy_names

    return "; ".join(f"{n}: {get_strategy(n).summary}" for n in strategy_names())


def _model_flags(
    parser: argparse.ArgumentParser, *, strategy: bool = True, sweep: bool = False
) -> None:
    g = parser.add_argument_group("models (environment variables in brackets)")
    many: dict[str, Any] = {"action": "append"} if sweep else {}
    again = " (repeat for replicas)" if sweep else ""
    g.add_argument(
        "--base-url",
        help=f"policy server, OpenAI-style …/v1{again} [LANGGRAPH_TTS_BASE_URL]",
        **many,
    )
    g.add_argument("--model", help="policy model name [LANGGRAPH_TTS_MODEL]")
    g.add_argument(
        "--prm-url",
        help=f"PRM server root; it serves /pooling{again} [LANGGRAPH_TTS_PRM_URL]",
        **many,
    )
    g.add_argument("--prm-model", help="PRM model name [LANGGRAPH_TTS_PRM_MODEL]")
    g.add_argument(
        "--embed-url", help=f"embedding server, …/v1{again} [LANGGRAPH_TTS_EMBED_URL]", **many
    )
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
            help=f"{_strategy_help()} (default: dora)"
            + ("; a comma-separated list sweeps" if sweep else ""),
        )
        if sweep:
            s.add_argument(
                "--budget", default="16", help="rollout budget N, or a list such as 4,16,64"
            )
        else:
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


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors: the usage block (ten lines for `solve`) hides the
    message; `--help` still shows it."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="langgraph-tts",
        description="Test-time scaling for math reasoning on vLLM servers, as LangGraph graphs.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("solve", help="solve one problem and print the answer")
    p.add_argument("problem", help="the problem text, or - to read it from standard input")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")
    _model_flags(p)

    e = sub.add_parser(
        "eval",
        help="evaluate strategies × budgets × seeds on datasets (a resumable sweep)",
        description="Run every cell (dataset, problem, strategy, budget, seed) of the grid "
        "into OUT/results.sqlite; rerunning skips finished cells, other settings add new "
        "cells. Writes OUT/summary.json and OUT/results.jsonl. See docs/sweeps.md.",
    )
    e.add_argument(
        "--dataset",
        required=True,
        help="math500, aime24, aime25, amc23, gsm8k, a JSONL path, or sim:<scenario>[:<seed>] "
        "(simulated problems; serve them with sim-server --scenario <scenario>); a "
        "comma-separated list sweeps",
    )
    e.add_argument("--out", required=True, type=Path, help="output directory")
    e.add_argument("--limit", type=int, help="first K problems (after --where) only")
    e.add_argument(
        "--where",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="keep problems whose dataset field matches, e.g. --where level=5 or "
        "--where subject=Algebra,Geometry (repeatable)",
    )
    e.add_argument(
        "--seeds", help="seeds per cell: a count (5: seeds 0-4, from --seed on) or a list 0,3,7"
    )
    e.add_argument("--concurrency", type=int, default=32, help="problems in flight (default: 32)")
    e.add_argument(
        "--executor",
        choices=["local", "ray"],
        default="local",
        help="local: this process; ray: shards as Ray tasks (RAY_ADDRESS or a local Ray)",
    )
    e.add_argument(
        "--ray-shard-size", type=int, default=16, help="cells per Ray task (default: 16)"
    )
    e.add_argument("--no-resume", action="store_true", help="delete OUT's results and start over")
    e.add_argument("--quiet", action="store_true", help="no progress bar")
    _model_flags(e, sweep=True)

    r = sub.add_parser(
        "report",
        help="tables and plots of evaluation directories",
        description="Summarize one or more `eval` output directories: a table per "
        "(dataset, strategy, budget), optionally as markdown, and the accuracy-vs-budget, "
        "-tokens and -FLOPs figure (needs the `plot` extra).",
    )
    r.add_argument("dirs", nargs="+", type=Path, metavar="DIR", help="eval output directories")
    r.add_argument("--plot", type=Path, metavar="FILE.png", help="write the figure here")
    r.add_argument("--markdown", action="store_true", help="print a markdown table")
    r.add_argument("--json", action="store_true", help="print the summary as JSON")
    r.add_argument("--debug", action="store_true", help="show tracebacks")

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
    c.add_argument(
        "--targets",
        help="run budgets N to fit per-bin budget plans for, each spending on average what "
        "best-of-N at N costs (default: --budgets)",
    )
    c.add_argument(
        "--cost",
        choices=["samples", "completion_tokens"],
        default="samples",
        help="what the plans' budgets count (default: samples)",
    )
    c.add_argument(
        "--bon-pool",
        type=int,
        metavar="P",
        help="draw best-of-N once with P samples per problem and read every budget up to P "
        "from it as an expected accuracy (P >= the largest budget; plans may then choose "
        "6, 12, 24, 48, ... too)",
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
    from .errors import check_problem
    from .solve import Solver

    ctx = context_from_args(args)
    problem = check_problem(sys.stdin.read() if args.problem == "-" else args.problem)
    await _check(ctx)
    solver = Solver(ctx)
    out = await solver(problem, on_event=_progress_printer(args.quiet or args.json))
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


def _check_counts(args: argparse.Namespace) -> None:
    """`--concurrency` and `--limit` are positive (0 would hang or mean "all")."""
    from .errors import ConfigError

    for flag, value in (("--concurrency", args.concurrency), ("--limit", args.limit)):
        if value is not None and value < 1:
            raise ConfigError(f"{flag} must be at least 1, got {value}")


async def _eval(args: argparse.Namespace) -> int:
    from .errors import ConfigError
    from .evaluation import load_dataset
    from .replicas import replica_urls
    from .report import format_table
    from .sweep import SweepSpec, parse_seeds, parse_where, run_sweep

    strategies = list(dict.fromkeys(_names(args.strategy, "--strategy")))
    raw_budgets = _names(str(args.budget), "--budget")
    if not all(b.isdigit() and int(b) > 0 for b in raw_budgets):
        raise ConfigError(
            f"--budget must be positive integers such as 4,16,64, got {args.budget!r}"
        )
    budgets = sorted({int(b) for b in raw_budgets})
    datasets = list(dict.fromkeys(_names(args.dataset, "--dataset")))
    bases, prms, embeds = args.base_url or [], args.prm_url or [], args.embed_url or []
    args.base_url = bases[0] if bases else None
    args.prm_url = prms[0] if prms else None
    args.embed_url = embeds[0] if embeds else None
    args.strategy, args.budget = strategies[0], budgets[0]
    ctx = context_from_args(args)
    seeds = parse_seeds(args.seeds, ctx.seed)
    replicas = replica_urls(
        bases or [ctx.base_url], prms or [ctx.prm_url], embeds or [ctx.embed_url]
    )
    spec = SweepSpec(
        datasets, strategies, budgets, seeds, ctx, limit=args.limit, where=parse_where(args.where)
    )
    if args.no_resume:
        for name in ("results.sqlite", "results.sqlite-wal", "results.sqlite-shm", "results.jsonl"):
            with contextlib.suppress(FileNotFoundError):
                (args.out / name).unlink()
    _check_counts(args)
    for name in datasets:  # a bad name or a bad file fails before any request
        load_dataset(name)
    args.out.mkdir(parents=True, exist_ok=True)  # an unwritable --out fails before any request
    await _check_replicas(ctx, replicas, strategies)
    bar: Any = None

    def start(plan: Any) -> None:
        nonlocal bar
        done = len(plan.cells) - len(plan.todo)
        if not args.quiet:
            from .progress import SweepProgress

            bar = SweepProgress(len(plan.cells), done=done, correct=plan.resumed_correct)
            bar.__enter__()
        elif done:
            print(f"resuming: {done} of {len(plan.cells)} cells already done", file=sys.stderr)

    try:
        summary = await run_sweep(
            spec,
            args.out,
            replicas,
            concurrency=args.concurrency,
            executor=args.executor,
            ray_shard_size=args.ray_shard_size,
            on_start=start,
            on_row=lambda row: bar.update(row) if bar is not None else None,
        )
    finally:
        if bar is not None:
            bar.__exit__(None, None, None)
    print(format_table(summary))
    print(f"{summary['rows']} rows -> {args.out}/summary.json, {args.out}/results.jsonl")
    return 0


async def _check_replicas(ctx: Any, replicas: list[Any], strategies: list[str]) -> None:
    """Preflight every replica: a replica that cannot be reached starts out of the pool (it
    is retried later) unless none can be reached; any other problem stops the run."""
    import time

    from .context import with_overrides
    from .errors import ServerUnavailableError
    from .sweep import replica_context

    down: list[ServerUnavailableError] = []
    for replica in replicas:
        try:
            for strategy in strategies:
                # --table belongs to compute_optimal only, even in a sweep of several
                table = {} if strategy == "compute_optimal" else {"table": None}
                rctx = replica_context(ctx, replica)
                await _check(with_overrides(rctx, strategy=strategy, **table))
        except ServerUnavailableError as err:
            if len(replicas) == 1:
                raise
            down.append(err)
            replica.failures, replica.down_until = 1, time.monotonic() + 5.0
            print(
                f"langgraph-tts: replica {replica.index} is down, retried later: {err}",
                file=sys.stderr,
            )
    if len(down) == len(replicas):
        raise down[0]


async def _report(args: argparse.Namespace) -> int:
    from .report import format_markdown, format_table, load_dirs, plot

    summary = load_dirs(args.dirs)
    if args.json:
        print(json.dumps(summary, indent=2))
    elif args.markdown:
        print(format_markdown(summary))
    else:
        print(format_table(summary))
    if args.plot:
        plot(summary, args.plot)
        print(f"figure -> {args.plot}", file=sys.stderr)
    return 0


def _names(raw: str, flag: str) -> list[str]:
    from .errors import ConfigError

    names = [x.strip() for x in raw.split(",") if x.strip()]
    if not names:
        raise ConfigError(f"{flag} needs a comma-separated list, got {raw!r}")
    return names


def _positive_ints(raw: str, flag: str) -> list[int]:
    """`4,16,64` as integers, or one ConfigError naming the flag."""
    from .errors import ConfigError

    items = _names(raw, flag)
    if not all(b.isdigit() and int(b) > 0 for b in items):
        raise ConfigError(f"{flag} must be positive integers such as 4,16, got {raw!r}")
    return [int(b) for b in items]


async def _calibrate(args: argparse.Namespace) -> int:
    from .compute_optimal.calibrate import calibrate
    from .compute_optimal.table import candidates_for, format_plans, format_table
    from .compute_optimal.tablefile import write_table
    from .errors import ConfigError
    from .evaluation import load_dataset
    from .preflight import check_servers

    budgets = _positive_ints(args.budgets, "--budgets")
    targets = _positive_ints(args.targets, "--targets") if args.targets else budgets
    strategies = _names(args.strategies, "--strategies")
    candidates_for(strategies, 1)  # unknown names fail before any request
    if args.bins < 1:
        raise ConfigError(f"--bins must be at least 1, got {args.bins}")
    if args.bon_pool is not None and "best_of_n" not in strategies:
        raise ConfigError("--bon-pool draws best-of-N's pool: add best_of_n to --strategies")
    if args.bon_pool is not None and args.bon_pool < max(budgets):
        raise ConfigError(
            f"--bon-pool must be at least the largest --budgets ({max(budgets)}), "
            f"got {args.bon_pool}"
        )
    ctx = context_from_args(args)
    _check_counts(args)
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
        budgets=budgets,
        targets=targets,
        cost_metric=args.cost,
        bon_pool=args.bon_pool,
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
    if table.plans:
        print(f"\nper-bin budgets ({table.cost_metric} per problem, k included):")
        print(format_plans(table))
    print(
        f"{table.difficulty} difficulty from k={table.difficulty_samples} samples, "
        f"{table.source.get('problems')} problems -> {args.out} (runs in {runs})"
    )
    return 0


def _not_utf8(err: UnicodeDecodeError) -> str:
    return (
        f"an input file is not UTF-8 text (byte {err.object[err.start : err.start + 1]!r} at "
        f"offset {err.start}: {err.reason}); convert it to UTF-8"
    )


def _os_error(err: OSError) -> str:
    """A file the command cannot read or write (`--out` in a read-only place, a file where
    a directory should be), as one line naming the path."""
    what = err.strerror or type(err).__name__
    if err.filename is None:
        return f"{what} ({type(err).__name__})"
    return f"cannot use {err.filename}: {what}"


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
        runners = {"solve": _solve, "eval": _eval, "calibrate": _calibrate, "report": _report}
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
    except UnicodeDecodeError as err:
        if args.debug:
            raise
        print(f"langgraph-tts: {_not_utf8(err)}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as err:
        if args.debug:
            raise
        print(f"langgraph-tts: {_os_error(err)}", file=sys.stderr)
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
