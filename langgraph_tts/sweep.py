"""Sweeps: a grid of (dataset, problem, strategy, budget, seed) cells under one set of settings.

`run_sweep` plans the cells, skips the ones the results store already holds (no request is
made for them), solves the rest with at most `concurrency` problems in flight on the least
loaded replica, and commits each row as soon as its cell finishes. A cell's identity includes
a fingerprint of every setting that changes results (endpoints, keys and concurrency do not),
so rerunning with other settings into the same directory adds new cells and never relabels
old ones. `executor="ray"` runs shards of the grid as Ray tasks (`langgraph_tts.ray_executor`).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic_core import to_jsonable_python

from .errors import ConfigError, ServerUnavailableError
from .grading import Grader, default_grader
from .replicas import (
    Meter,
    MeteredEmbedder,
    MeteredPolicy,
    MeteredReward,
    Replica,
    ReplicaPool,
    current_meter,
    replica_fault,
)
from .store import CellKey, ResultStore
from .upgrades import legacy_settings

__all__ = [
    "NON_RESULT_SETTINGS",
    "Cell",
    "SweepSpec",
    "fingerprint",
    "parse_seeds",
    "parse_where",
    "plan_cells",
    "problem_digest",
    "run_cells",
    "run_sweep",
]

logger = logging.getLogger(__name__)

NON_RESULT_SETTINGS = frozenset(
    {
        "strategy",
        "budget",
        "seed",  # cell dimensions of their own
        "base_url",
        "prm_url",
        "embed_url",
        "system1_base_url",
        "system2_base_url",
        "api_key",
        "max_concurrency",
        "max_retries",
        "request_timeout",
        "adaptive_pool",  # a process-local name; `adaptive` itself is in the fingerprint
    }
)
"""Settings that do not change results: left out of the fingerprint."""

OnRow = Callable[[CellKey, dict[str, Any], str], None]
"""Called with each finished cell's key, row and problem digest."""


@dataclass(frozen=True)
class Cell:
    """A cell to run: its key and the problem."""

    key: CellKey
    problem: dict[str, str]


@dataclass
class SweepSpec:
    """The grid: datasets × strategies × budgets × seeds, under `settings` (a context)."""

    datasets: list[str]
    strategies: list[str]
    budgets: list[int]
    seeds: list[int]
    settings: Any
    """The base `SolveContext` (its strategy, budget and seed are replaced per cell)."""
    limit: int | None = None
    where: list[tuple[str, set[str]]] = field(default_factory=list)


def parse_seeds(raw: str | None, base: int | None) -> list[int]:
    """`--seeds K` (seeds base..base+K-1) or `--seeds 0,3,7`; no flag: `[base or 0]`."""
    start = base or 0
    if raw is None:
        return [start]
    text = raw.strip()
    try:
        if "," in text:
            seeds = [int(x) for x in text.split(",") if x.strip()]
        else:
            count = int(text)
            if count < 1:
                raise ValueError
            seeds = list(range(start, start + count))
    except ValueError:
        msg = f"--seeds takes a count such as 5 or a list such as 0,3,7, got {raw!r}"
        raise ConfigError(msg) from None
    if not seeds or any(s < 0 for s in seeds) or len(set(seeds)) != len(seeds):
        raise ConfigError(f"--seeds must be distinct non-negative integers, got {raw!r}")
    return seeds


def parse_where(items: Sequence[str]) -> list[tuple[str, set[str]]]:
    """`--where level=5` or `--where subject=Algebra,Geometry` (all conditions must hold)."""
    out = []
    for item in items:
        key, sep, values = item.partition("=")
        if not sep or not key.strip() or not values.strip():
            raise ConfigError(f"--where expects FIELD=VALUE[,VALUE...], got {item!r}")
        out.append((key.strip(), {v.strip() for v in values.split(",")}))
    return out


def select(
    problems: list[dict[str, str]], where: list[tuple[str, set[str]]], limit: int | None
) -> list[dict[str, str]]:
    """Problems matching every condition, the first `limit` of them."""
    kept = [p for p in problems if all(str(p.get(k)) in vs for k, vs in where)]
    return kept[:limit] if limit is not None else kept


def settings_dict(ctx: Any) -> dict[str, Any]:
    """Every setting of a context as JSON values (the API key left out)."""
    raw = dict(ctx.values())
    raw.pop("api_key", None)
    out: dict[str, Any] = to_jsonable_python(raw)
    return out


def fingerprint(ctx: Any) -> tuple[str, dict[str, Any]]:
    """A short hash of every setting that changes results, and those settings.

    A setting added by an upgrade is left out where it changes nothing
    (`upgrades.ADDED_SETTINGS`), so finished cells keep their fingerprint across the upgrade.
    """
    values = settings_dict(ctx)
    skip = NON_RESULT_SETTINGS | legacy_settings(values)
    kept = {k: v for k, v in values.items() if k not in skip}
    text = json.dumps(kept, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:12], kept


def problem_digest(problem: dict[str, str]) -> str:
    """Identity of a problem's content, so a changed dataset file is noticed."""
    text = json.dumps([problem["problem"], problem["answer"]], ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def plan_cells(spec: SweepSpec, problems: dict[str, list[dict[str, str]]], fp: str) -> list[Cell]:
    """Every cell of the grid, seed by seed, so early rows already cover the whole grid."""
    cells = []
    for seed in spec.seeds:
        for dataset in spec.datasets:
            for budget in spec.budgets:
                for strategy in spec.strategies:
                    for p in problems[dataset]:
                        key = CellKey(dataset, p["id"], strategy, budget, seed, fp)
                        cells.append(Cell(key, p))
    return cells


# --- running cells ---------------------------------------------------------------------------


def bind_solver(base: Any, replica: Replica) -> Any:
    """A `Solver` whose clients all talk to `replica`'s servers (counted and timed)."""
    from .context import with_overrides
    from .resources import _embedder_kind, resolve_clients
    from .solve import Solver

    ctx = replica_context(base, replica)
    policy = MeteredPolicy(resolve_clients(ctx).policy, replica)
    prm = None
    if ctx.prm_url:
        prm = MeteredReward(resolve_clients(ctx, policy=policy).reward, replica)
    embedder = None
    if _embedder_kind(ctx) == "server":
        dora = with_overrides(ctx, strategy="dora")
        found = resolve_clients(dora, policy=policy, need_embedder=True).embedder
        embedder = MeteredEmbedder(found, replica) if found is not None else None
    return Solver(ctx, policy=policy, prm=prm, embedder=embedder)


def replica_context(base: Any, replica: Replica) -> Any:
    from .context import with_overrides

    urls: dict[str, Any] = {"base_url": replica.base_url}
    if replica.prm_url is not None:
        urls["prm_url"] = replica.prm_url
    if replica.embed_url is not None:
        urls["embed_url"] = replica.embed_url
    return with_overrides(base, **urls)


async def _coverage(grader: Grader, gold: str, out: dict[str, Any], correct: bool) -> bool:
    """Any finished solution's answer is correct (the vote's groups), else the answer's."""
    if correct:
        return True
    groups = (out.get("result") or {}).get("groups") or []
    for group in groups:
        pred = group.get("answer")
        if pred is not None and await grader.aequivalent(gold, pred):
            return True
    return False


async def solve_cell(cell: Cell, base: Any, pool: ReplicaPool, grader: Grader) -> dict[str, Any]:
    """Solve and grade one cell on a replica; failover when the replica is unreachable."""
    from .context import with_overrides

    key, item = cell.key, cell.problem
    extras = {k: v for k, v in item.items() if k not in ("id", "problem", "answer")}
    row: dict[str, Any] = {
        **extras,  # dataset fields (level, subject, ...) never override the cell's own
        "dataset": key.dataset,
        "id": key.problem_id,
        "strategy": key.strategy,
        "budget": key.budget,
        "seed": key.seed,
        "fingerprint": key.fingerprint,
        "answer": item["answer"],
    }
    attempts = 2 * len(pool.replicas) - 1
    started = time.perf_counter()
    avoid: Replica | None = None
    for attempt in range(attempts):
        replica = await pool.acquire(avoid)
        meter = Meter()
        token = current_meter().set(meter)
        ok = False
        try:
            ctx = with_overrides(
                replica_context(base, replica),
                strategy=key.strategy,
                budget=key.budget,
                seed=key.seed,
            )
            out = await replica.solver(item["problem"], context=ctx)
            ok = True
        except Exception as err:
            if replica_fault(err):  # the replica is unhealthy: the problem moves on
                pool.failed(replica, err)
                avoid = replica
                if attempt + 1 < attempts:
                    continue
                if isinstance(err, ServerUnavailableError):
                    raise  # unreachable everywhere: every further cell would fail too
            # recorded per cell, the sweep goes on (the cell is retried by the next run)
            logger.warning("problem %s failed: %s", key.problem_id, err)
            row.update(prediction=None, correct=False, coverage=False, ledger={})
            row["error"] = f"{type(err).__name__}: {err}"
            ok = True
            break
        finally:
            current_meter().reset(token)
            pool.release(replica, ok=ok)
        pred = out.get("answer")
        correct = bool(pred is not None and await grader.aequivalent(item["answer"], pred))
        row.update(
            prediction=pred,
            correct=correct,
            coverage=await _coverage(grader, item["answer"], out, correct),
            ledger=out.get("ledger") or {},
            result={k: v for k, v in (out.get("result") or {}).items() if k != "groups"},
            error=None,
        )
        break
    row["replica"] = replica.index
    row["latency_ms"] = meter.latency_ms
    row["cached_prompt_tokens"] = meter.cached_prompt_tokens
    row["wall_s"] = round(time.perf_counter() - started, 4)
    return row


async def run_cells(
    cells: Sequence[Cell],
    base: Any,
    replicas: Sequence[Replica],
    *,
    concurrency: int,
    on_row: OnRow,
    grader: Grader | None = None,
) -> None:
    """Run `cells` with at most `concurrency` problems in flight; `on_row` gets each row as
    soon as its cell finishes. An unreachable server everywhere aborts the run."""
    if concurrency < 1:
        raise ConfigError(f"--concurrency must be at least 1, got {concurrency}")
    grader = grader or default_grader()
    for replica in replicas:
        if replica.solver is None:
            replica.solver = bind_solver(base, replica)
    pool = ReplicaPool(replicas)
    queue: asyncio.Queue[Cell] = asyncio.Queue()
    for cell in cells:
        queue.put_nowait(cell)

    async def worker() -> None:
        while True:
            try:
                cell = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            row = await solve_cell(cell, base, pool, grader)
            on_row(cell.key, row, problem_digest(cell.problem))

    try:
        async with asyncio.TaskGroup() as group:
            for _ in range(min(concurrency, len(cells))):
                group.create_task(worker())
    except* ServerUnavailableError as errors:
        raise errors.exceptions[0] from None


# --- the whole sweep ------------------------------------------------------------------------


@dataclass
class SweepPlan:
    """What a sweep will do: every cell, and the ones still to run."""

    cells: list[Cell]
    todo: list[Cell]
    fingerprint: str
    settings: dict[str, Any]
    resumed_correct: int = 0


def prepare(spec: SweepSpec, store: ResultStore) -> SweepPlan:
    """Load the datasets, plan the cells, check the store and leave out finished cells."""
    from .context import with_overrides
    from .evaluation import load_dataset

    for strategy in spec.strategies:  # every combination validates before any request
        for budget in spec.budgets:
            with_overrides(spec.settings, strategy=strategy, budget=budget)
    problems: dict[str, list[dict[str, str]]] = {}
    for name in spec.datasets:
        loaded = load_dataset(name, limit=None if spec.where else spec.limit)
        chosen = select(loaded, spec.where, spec.limit)
        if not chosen:
            raise ConfigError(f"no problem of {name} matches --where")
        stored = store.digests(name)
        for p in chosen:
            if stored.get(p["id"], problem_digest(p)) != problem_digest(p):
                msg = (
                    f"problem {p['id']} of {name} differs from the one the results in "
                    f"{store.directory} were run on; use a new --out directory"
                )
                raise ConfigError(msg)
        problems[name] = chosen
    fp, kept = fingerprint(spec.settings)
    cells = plan_cells(spec, problems, fp)
    done = store.finished_keys()
    todo = [c for c in cells if c.key not in done]
    wanted = {c.key for c in cells}
    correct = len(wanted & store.finished_keys(correct_only=True))
    return SweepPlan(cells, todo, fp, kept, correct)


def _with_pool(ctx: Any) -> tuple[Any, Any]:
    """With `adaptive`, one budget pool shared by every problem of this run (docs/adaptive.md):
    what easy problems leave unspent, uncertain ones may borrow. Returns (pool, settings); the
    caller keeps the pool alive while the run goes on (the registry holds it weakly)."""
    if not getattr(ctx, "adaptive", False) or getattr(ctx, "adaptive_pool", None):
        return None, ctx
    from .context import with_overrides
    from .strategies.pool import BudgetPool

    pool = BudgetPool()
    return pool, with_overrides(ctx, adaptive_pool=pool.name)


async def run_sweep(
    spec: SweepSpec,
    out_dir: Path,
    replicas: Sequence[Replica],
    *,
    concurrency: int = 32,
    executor: str = "local",
    ray_shard_size: int = 16,
    grader: Grader | None = None,
    on_start: Callable[[SweepPlan], None] | None = None,
    on_row: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Run the grid into `out_dir` and write `summary.json` and `results.jsonl` (an export of
    the store); returns the summary (see `langgraph_tts.report.summarize`)."""
    from .report import summarize_store

    with ResultStore(out_dir) as store:
        plan = prepare(spec, store)
        store.register_settings(plan.fingerprint, plan.settings)
        if on_start is not None:
            on_start(plan)

        def record(key: CellKey, row: dict[str, Any], digest: str) -> None:
            store.put(key, row, problem_digest=digest)
            if on_row is not None:
                on_row(row)

        if plan.todo:
            if executor == "ray":
                from .ray_executor import run_on_ray

                await run_on_ray(
                    plan.todo,
                    spec.settings,
                    list(replicas),
                    concurrency=concurrency,
                    shard_size=ray_shard_size,
                    on_row=record,
                )
            elif executor == "local":
                pool, settings = _with_pool(spec.settings)
                await run_cells(
                    plan.todo,
                    settings,
                    list(replicas),
                    concurrency=concurrency,
                    on_row=record,
                    grader=grader,
                )
                del pool
            else:
                raise ConfigError(f"unknown executor {executor!r}; known: local, ray")
        summary = summarize_store(store)
        store.export_jsonl(out_dir / "results.jsonl")
    tmp = out_dir / "summary.json.tmp"
    tmp.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    tmp.replace(out_dir / "summary.json")
    return summary
