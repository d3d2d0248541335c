"""Sweeps: the grid, the results store, replicas, the summary (unit tests, no servers)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from langgraph_tts.context import SolveContext, with_overrides
from langgraph_tts.errors import ConfigError, ServerError, ServerUnavailableError
from langgraph_tts.replicas import Meter, Replica, ReplicaPool, current_meter, replica_urls
from langgraph_tts.report import accuracy_stats, format_markdown, format_table, summarize_rows
from langgraph_tts.store import CellKey, ResultStore
from langgraph_tts.sweep import (
    Cell,
    SweepSpec,
    fingerprint,
    parse_seeds,
    parse_where,
    plan_cells,
    run_cells,
    select,
)


def test_parse_seeds() -> None:
    assert parse_seeds(None, None) == [0]
    assert parse_seeds(None, 7) == [7]
    assert parse_seeds("3", None) == [0, 1, 2]
    assert parse_seeds("2", 10) == [10, 11]
    assert parse_seeds("0,3,7", None) == [0, 3, 7]
    for bad in ("0", "x", "1,1", "-1,2"):
        with pytest.raises(ConfigError, match="seeds"):
            parse_seeds(bad, None)


def test_where_and_limit() -> None:
    problems = [
        {"id": str(i), "problem": "p", "answer": "1", "level": str(i % 3)} for i in range(9)
    ]
    where = parse_where(["level=1,2"])
    assert [p["id"] for p in select(problems, where, None)] == ["1", "2", "4", "5", "7", "8"]
    assert [p["id"] for p in select(problems, where, 2)] == ["1", "2"]
    with pytest.raises(ConfigError, match="FIELD=VALUE"):
        parse_where(["level"])


def test_fingerprint_ignores_endpoints_but_not_results_settings() -> None:
    ctx = SolveContext(base_url="http://a:1/v1", model="m")
    fp, kept = fingerprint(ctx)
    assert "base_url" not in kept and "api_key" not in kept and "seed" not in kept
    assert kept["model"] == "m"
    moved = with_overrides(ctx, base_url="http://b:2/v1", max_concurrency=3, seed=5, budget=64)
    assert fingerprint(moved)[0] == fp
    assert fingerprint(with_overrides(ctx, temperature=0.5))[0] != fp
    assert fingerprint(with_overrides(ctx, model="other"))[0] != fp


def test_plan_covers_the_grid_once() -> None:
    spec = SweepSpec(["d1", "d2"], ["dora", "rebase"], [4, 16], [0, 1], SolveContext())
    problems = {
        "d1": [
            {"id": "a", "problem": "1", "answer": "1"},
            {"id": "b", "problem": "2", "answer": "2"},
        ],
        "d2": [{"id": "a", "problem": "3", "answer": "3"}],
    }
    cells = plan_cells(spec, problems, "fp")
    assert len(cells) == 2 * 2 * 2 * 3
    assert len({c.key for c in cells}) == len(cells)
    assert cells[0].key.seed == 0 and cells[-1].key.seed == 1


def _key(pid: str = "p1", **kw: Any) -> CellKey:
    base = {"dataset": "d", "strategy": "dora", "budget": 4, "seed": 0, "fingerprint": "fp"}
    return CellKey(problem_id=pid, **{**base, **kw})


def test_store_one_row_per_cell_and_errors_are_retried(tmp_path: Path) -> None:
    with ResultStore(tmp_path) as store:
        store.put(_key(), {"id": "p1", "correct": False, "error": "boom"}, problem_digest="x")
        store.put(_key(), {"id": "p1", "correct": False, "error": "again"}, problem_digest="x")
        assert store.finished_keys() == set() and store.count() == 1
        assert store.rows()[0]["error"] == "again"
        store.put(_key(), {"id": "p1", "correct": True, "error": None}, problem_digest="x")
        assert store.finished_keys() == {_key()} and store.count() == 1
        # a late failure never replaces a finished row; a repeat write is a no-op
        store.put(_key(), {"id": "p1", "correct": False, "error": "late"}, problem_digest="x")
        store.put(_key(), {"id": "p1", "correct": True, "error": None}, problem_digest="x")
        assert store.count() == 1 and store.rows()[0]["correct"] is True
        store.put(_key(seed=1), {"id": "p1", "correct": True}, problem_digest="x")
        assert store.finished_keys(correct_only=True) == {_key(), _key(seed=1)}
        store.register_settings("fp", {"temperature": 0.8})
        store.register_settings("fp", {"temperature": 0.8})
        assert store.settings() == {"fp": {"temperature": 0.8}}
    with ResultStore(tmp_path) as again:  # reopened: same rows
        assert again.count() == 2


def test_store_refuses_an_old_results_jsonl(tmp_path: Path) -> None:
    (tmp_path / "results.jsonl").write_text('{"id": "x"}\n')
    with pytest.raises(ConfigError, match="older version"):
        ResultStore(tmp_path)


def test_accuracy_stats_over_seeds() -> None:
    one = accuracy_stats({0: [True, False, True, True]})
    assert one["accuracy"] == 0.75 and one["accuracy_std"] == 0.0
    low, high = one["accuracy_ci95"]
    assert 0.0 < low < 0.75 < high <= 1.0  # Wilson over the rows
    by_seed = {0: [True, True, False], 1: [True, False, False], 2: [True, True, True]}
    by_problem = {"a": [True, True, True], "b": [True, False, True], "c": [False, False, True]}
    many = accuracy_stats(by_seed, by_problem)
    assert many["accuracy"] == pytest.approx(2 / 3)
    assert many["accuracy_std"] == pytest.approx(float(np.std([2 / 3, 1 / 3, 1.0], ddof=1)))
    low, high = many["accuracy_ci95"]
    assert 1 / 3 <= low < 2 / 3 < high <= 1.0  # bootstrap over the three problems
    assert many == accuracy_stats(by_seed, by_problem)  # deterministic
    assert many["accuracy_per_seed"] == {"0": 2 / 3, "1": 1 / 3, "2": 1.0}


def _row(**kw: Any) -> dict[str, Any]:
    row = {
        "dataset": "math500",
        "id": "p",
        "strategy": "dora",
        "budget": 4,
        "seed": 0,
        "fingerprint": "fp1",
        "correct": True,
        "coverage": True,
        "error": None,
        "ledger": {"samples": 4, "completion_tokens": 100, "prompt_tokens": 50, "flops": 1e12},
        "latency_ms": [10.0, 20.0],
        "cached_prompt_tokens": 8,
        "wall_s": 1.0,
        "level": "5",
    }
    return {**row, **kw}


def test_summary_groups_never_mix_strategies_or_settings() -> None:
    rows = [
        _row(),
        _row(id="q", correct=False, coverage=True, level="1"),
        _row(seed=1, correct=False, coverage=False),
        _row(strategy="rebase"),
        _row(fingerprint="fp2", correct=False),
        _row(id="z", error="boom", correct=False),
    ]
    summary = summarize_rows(rows, {"fp1": {"temperature": 0.8}, "fp2": {"temperature": 0.5}})
    keys = [(g["strategy"], g["fingerprint"]) for g in summary["groups"]]
    assert keys == [("dora", "fp1"), ("dora", "fp2"), ("rebase", "fp1")]
    dora = summary["groups"][0]
    assert dora["n"] == 3 and dora["errors"] == 1 and dora["seeds"] == [0, 1]
    assert dora["accuracy"] == pytest.approx(0.25)  # seed 0: 1/2, seed 1: 0/1
    assert 0.0 <= dora["accuracy_ci95"][0] <= 0.25 <= dora["accuracy_ci95"][1] <= 1.0
    assert dora["coverage"] == pytest.approx(2 / 3)
    assert dora["accuracy_by_level"] == {
        "1": {"accuracy": 0.0, "n": 1},
        "5": {"accuracy": 0.5, "n": 2},
    }
    assert dora["mean_cached_prompt_tokens"] == 8 and dora["latency_ms"]["p50"] == 15.0
    table = format_table(summary)
    assert "dora [fp1" in table and "temperature=0.5" in table
    markdown = format_markdown(summary).splitlines()
    assert markdown[0].startswith("| dataset") and len(markdown) == 2 + 3


def test_replica_urls_pair_by_position() -> None:
    reps = replica_urls(["http://a/v1", "http://b/v1"], ["http://p"], [])
    assert [(r.base_url, r.prm_url, r.embed_url) for r in reps] == [
        ("http://a/v1", "http://p", None),
        ("http://b/v1", "http://p", None),
    ]
    with pytest.raises(ConfigError, match="--prm-url"):
        replica_urls(["a", "b", "c"], ["p", "q"], [])


async def test_pool_picks_least_loaded_and_takes_failing_out() -> None:
    a, b = Replica(0, "http://a/v1"), Replica(1, "http://b/v1")
    pool = ReplicaPool([a, b], cooldown_s=0.05)
    first, second = await pool.acquire(), await pool.acquire()
    assert {first.index, second.index} == {0, 1}  # problems spread before any request
    a.outstanding = 5
    assert (await pool.acquire()) is b  # fewest outstanding requests
    pool.failed(b, RuntimeError("down"))
    assert (await pool.acquire()) is a  # b cools down
    await asyncio.sleep(0.06)
    a.outstanding = 0
    b.problems = 0
    a.problems = 5
    assert (await pool.acquire()) is b  # back after the cool-down


class _Solver:
    """Stands in for a replica's Solver: counts calls, can be unreachable or failing."""

    def __init__(self, dead: bool = False, status: int | None = None) -> None:
        self.dead, self.status, self.calls = dead, status, 0

    async def __call__(self, problem: str, *, context: Any = None) -> dict[str, Any]:
        self.calls += 1
        meter = current_meter().get()
        assert isinstance(meter, Meter)
        meter.record(0.01)
        if self.dead:
            raise ServerUnavailableError("http://dead/v1", role="policy", cause="refused")
        if self.status is not None:
            raise ServerError(f"HTTP {self.status}", url="http://x/v1", status=self.status)
        await asyncio.sleep(0)
        return {"answer": problem, "ledger": {"samples": 1}, "result": {}}


async def test_problems_continue_on_a_live_replica(tmp_path: Path) -> None:
    from langgraph_tts.grading import default_grader

    dead, live = Replica(0, "http://dead/v1"), Replica(1, "http://live/v1")
    dead.solver, live.solver = _Solver(dead=True), _Solver()
    cells = [
        Cell(_key(str(i)), {"id": str(i), "problem": str(i), "answer": str(i)}) for i in range(6)
    ]
    rows: list[dict[str, Any]] = []
    await run_cells(
        cells,
        SolveContext(),
        [dead, live],
        concurrency=3,
        on_row=lambda key, row, digest: rows.append(row),
        grader=default_grader(),
    )
    assert len(rows) == 6 and all(r["correct"] and r["replica"] == 1 for r in rows)
    assert dead.solver.calls >= 1 and live.solver.calls == 6
    assert all(r["latency_ms"] == [10.0] for r in rows)  # the failed attempt's meter is dropped


async def test_unreachable_everywhere_aborts(tmp_path: Path) -> None:
    only = Replica(0, "http://dead/v1")
    only.solver = _Solver(dead=True)
    cell = Cell(_key(), {"id": "p1", "problem": "1", "answer": "1"})
    with pytest.raises(ServerUnavailableError):
        await run_cells([cell], SolveContext(), [only], concurrency=1, on_row=lambda *a: None)


def test_progress_counts_resumed_cells() -> None:
    import io

    from rich.console import Console

    from langgraph_tts.progress import SweepProgress

    buf = io.StringIO()
    bar = SweepProgress(10, done=4, correct=2, console=Console(file=buf), log_every_s=0.0)
    with bar:
        bar.update({"correct": True, "ledger": {"completion_tokens": 100}})
        bar.update({"correct": False, "error": "x", "ledger": {}})
    assert bar.progress.tasks[0].completed == 6
    lines = buf.getvalue().splitlines()
    assert lines[0].startswith("sweep 4/10  acc 0.500") and "4 resumed" in lines[0]
    assert lines[-1].startswith("sweep 6/10  acc 0.500") and "1 errors" in lines[-1]
    assert "tok/s" in lines[-1] and "eta" in lines[-1]


async def test_metered_policy_reads_cached_prompt_tokens() -> None:
    from langgraph_tts.clients.policy import ChatPolicy
    from langgraph_tts.replicas import MeteredPolicy

    class FakeHTTP:
        def url(self, path: str) -> str:
            return "http://fake/v1" + path

        async def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
            return {
                "choices": [
                    {"index": 0, "message": {"content": "2"}, "finish_reason": "stop"},
                ],
                "usage": {
                    "prompt_tokens": 30,
                    "completion_tokens": 1,
                    "prompt_tokens_details": {"cached_tokens": 24},
                },
            }

    policy = ChatPolicy("http://fake/v1", "m")
    policy._http = FakeHTTP()  # type: ignore[assignment]
    replica = Replica(0, "http://fake/v1")
    metered = MeteredPolicy(policy, replica)
    meter = Meter()
    token = current_meter().set(meter)
    try:
        gen = await metered.generate([{"role": "user", "content": "1+1?"}])
    finally:
        current_meter().reset(token)
    assert gen.samples[0].text == "2" and gen.usage.prompt_tokens == 30
    assert meter.cached_prompt_tokens == 24 and len(meter.latency_ms) == 1
    assert replica.outstanding == 0


async def test_run_eval_refuses_to_resume_other_settings(tmp_path: Path) -> None:
    """The per-run evaluation (used by calibrate) never relabels rows either."""
    from langgraph_tts.evaluation import run_eval
    from langgraph_tts.grading import default_grader

    async def solve(problem: str) -> dict[str, Any]:
        return {"answer": problem, "ledger": {"samples": 1}, "result": {}}

    problems = [{"id": "a", "problem": "1", "answer": "1"}]
    common: dict[str, Any] = {"dataset": "d", "grader": default_grader()}
    dora = {"strategy": "dora", "budget": 4, "base_url": "http://a/v1"}
    await run_eval(solve, problems, tmp_path, settings=dora, **common)
    moved = {**dora, "base_url": "http://b/v1"}  # endpoints may change
    await run_eval(solve, problems, tmp_path, settings=moved, **common)
    with pytest.raises(ConfigError, match=r"strategy: 'dora' -> 'rebase'"):
        await run_eval(solve, problems, tmp_path, settings={**dora, "strategy": "rebase"}, **common)
    summary = await run_eval(
        solve, problems, tmp_path, settings={**dora, "strategy": "rebase"}, resume=False, **common
    )
    assert summary["strategy"] == "rebase" and summary["n"] == 1


async def test_failing_replica_moves_problems_and_bad_requests_stay_errors() -> None:
    from langgraph_tts.grading import default_grader

    rows: list[dict[str, Any]] = []

    def keep(key: CellKey, row: dict[str, Any], digest: str) -> None:
        rows.append(row)

    cells = [
        Cell(_key(str(i)), {"id": str(i), "problem": str(i), "answer": str(i)}) for i in range(4)
    ]
    sick, live = Replica(0, "http://sick/v1"), Replica(1, "http://live/v1")
    sick.solver, live.solver = _Solver(status=503), _Solver()
    grader = default_grader()
    await run_cells(cells, SolveContext(), [sick, live], concurrency=2, on_row=keep, grader=grader)
    assert len(rows) == 4 and all(r["replica"] == 1 and r["error"] is None for r in rows)
    # a 400 is the request's fault: recorded in the row, the run goes on, no failover
    rows.clear()
    only = Replica(0, "http://x/v1")
    only.solver = _Solver(status=400)
    await run_cells(cells, SolveContext(), [only], concurrency=2, on_row=keep, grader=grader)
    assert len(rows) == 4 and all("HTTP 400" in r["error"] for r in rows)
    assert only.failures == 0
    # a 503 with one replica: recorded too (the next run retries the cell)
    rows.clear()
    alone = Replica(0, "http://x/v1")
    alone.solver = _Solver(status=503)
    await run_cells(cells[:1], SolveContext(), [alone], concurrency=1, on_row=keep, grader=grader)
    assert len(rows) == 1 and "HTTP 503" in rows[0]["error"]


def test_an_adaptive_sweep_shares_one_budget_pool_without_changing_its_fingerprint() -> None:
    from langgraph_tts.strategies.pool import get_pool
    from langgraph_tts.sweep import _with_pool

    fixed = SolveContext(strategy="dora")
    assert _with_pool(fixed) == (None, fixed)
    adaptive = SolveContext(strategy="dora", adaptive=True)
    pool, settings = _with_pool(adaptive)
    assert pool is not None and settings.adaptive_pool == pool.name
    assert get_pool(pool.name) is pool
    assert fingerprint(settings)[0] == fingerprint(adaptive)[0]


async def test_run_eval_resumes_across_an_upgrade_that_adds_a_setting(tmp_path: Path) -> None:
    """A setting the earlier run did not know is ignored only where it changes nothing."""
    import json

    from langgraph_tts.context import SearchContext
    from langgraph_tts.evaluation import run_eval
    from langgraph_tts.grading import default_grader

    async def solve(problem: str) -> dict[str, Any]:
        return {"answer": problem, "ledger": {"samples": 1}, "result": {}}

    problems = [{"id": "a", "problem": "1", "answer": "1"}]
    common: dict[str, Any] = {"dataset": "d", "grader": default_grader()}

    async def resume(first: Any, then: Any, where: Path) -> None:
        await run_eval(solve, problems, where, settings=first, **common)
        run = json.loads((where / "run.json").read_text())
        del run["settings"]["adaptive_cancel"]  # as if written before the setting existed
        (where / "run.json").write_text(json.dumps(run))
        await run_eval(solve, problems, where, settings=then, **common)

    fixed = SearchContext(strategy="self_consistency", budget=4)
    await resume(fixed, fixed, tmp_path / "fixed")  # not adaptive: cancelling changes nothing
    adaptive = SearchContext(strategy="self_consistency", budget=4, adaptive=True)
    with pytest.raises(ConfigError, match=r"adaptive_cancel: None -> True"):
        await resume(adaptive, adaptive, tmp_path / "adaptive")  # rounds now stop early
    whole_rounds = SearchContext(
        strategy="self_consistency", budget=4, adaptive=True, adaptive_cancel=False
    )
    await resume(whole_rounds, whole_rounds, tmp_path / "whole")  # as before the upgrade


def test_fingerprints_leave_out_added_settings_where_they_change_nothing() -> None:
    from langgraph_tts.context import SearchContext

    fp, kept = fingerprint(SearchContext(strategy="dora", budget=4))
    assert "adaptive_cancel" not in kept and "adaptive_confidence" in kept
    _, kept = fingerprint(SearchContext(strategy="dora", budget=4, adaptive=True))
    assert "adaptive_cancel" not in kept  # DORA's rounds are never cancelled
    _, kept = fingerprint(SearchContext(strategy="self_consistency", budget=4, adaptive=True))
    assert kept["adaptive_cancel"] is True
    assert fingerprint(SearchContext(strategy="dora", budget=4, adaptive_cancel=False))[0] == fp
