"""Per-bin budgets for compute-optimal: the exact plan, its limits, reuse of the estimate."""

from __future__ import annotations

import itertools
import json
import random
from pathlib import Path
from typing import Any

import pytest
from fakes import RecordingPolicy, load_benchmark
from hypothesis import given, settings
from hypothesis import strategies as st

from langgraph_tts.compute_optimal import (
    Cell,
    Choice,
    StrategyTable,
    calibrate,
    create_compute_optimal_graph,
    measure_difficulty,
    parse_table,
)
from langgraph_tts.compute_optimal.plan import (
    BudgetPlan,
    Option,
    PlanEntry,
    best_plan,
    bin_values,
    fit_plans,
    options_for,
)
from langgraph_tts.compute_optimal.subsample import PoolSample, expected_right, pool_grid
from langgraph_tts.context import SolveContext
from langgraph_tts.errors import ConfigError
from langgraph_tts.search.graph import create_search_graph
from langgraph_tts.sim.inprocess import SimEmbedder, SimPolicy, SimPRM
from langgraph_tts.sim.server import SimConfig
from langgraph_tts.sim.world import make_problems

BON = Choice(strategy="best_of_n")
DVTS = Choice(strategy="dvts", beam_width=4)
CONFIG = SimConfig(seed=3)


def _option(choice: Choice, budget: int, right: dict[str, bool], cost: float) -> Option:
    return Option(choice, budget, right, dict.fromkeys(right, cost))


# --- the exact plan ---------------------------------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(
    data=st.data(),
    n_options=st.integers(1, 4),
    n_bins=st.integers(1, 3),
    per_bin=st.integers(0, 4),
)
def test_best_plan_is_the_brute_force_optimum(
    data: st.DataObject, n_options: int, n_bins: int, per_bin: int
) -> None:
    ids = [[f"b{b}p{i}" for i in range(per_bin)] for b in range(n_bins)]
    every = [p for group in ids for p in group]
    options = [
        Option(
            BON,
            4 + k,
            {p: data.draw(st.booleans()) for p in every},
            {p: float(data.draw(st.integers(1, 9))) for p in every},
        )
        for k in range(n_options)
    ]
    limit = float(data.draw(st.integers(0, 9 * len(every) + 1)))

    def score(picks: tuple[int, ...]) -> tuple[int, float]:
        right = sum(options[k].correct[p] for k, g in zip(picks, ids, strict=True) for p in g)
        cost = sum(options[k].cost[p] for k, g in zip(picks, ids, strict=True) for p in g)
        return right, cost

    feasible = [
        (score(c), c)
        for c in itertools.product(range(n_options), repeat=n_bins)
        if score(c)[1] <= limit
    ]
    picks = best_plan(*bin_values(options, ids), limit)
    if not feasible:
        assert picks is None
        return
    assert picks is not None
    best_right = max(s[0] for s, _ in feasible)
    cheapest = min(s[1] for s, _ in feasible if s[0] == best_right)
    assert score(picks) == (best_right, cheapest)


def test_shrinkage_pulls_bin_accuracies_towards_the_option_overall() -> None:
    lucky = Option(
        BON, 8, {"a": True, "b": False, "c": False, "d": False}, dict.fromkeys("abcd", 1.0)
    )
    values, costs = bin_values([lucky], [["a"], ["b", "c", "d"]])
    assert values == [[1.0], [0.0]] and costs == [[1.0], [3.0]]
    values, _ = bin_values([lucky], [["a"], ["b", "c", "d"]], shrinkage=4.0)
    # (1 + 4 x 0.25) / 5 = 0.4 for the lucky bin; 3 x (0 + 1) / 7 for the other
    assert values[0][0] == pytest.approx(0.4) and values[1][0] == pytest.approx(3 / 7)


def test_reused_best_of_n_costs_only_the_new_samples_and_small_n_is_the_estimate() -> None:
    right = {"a": True, "b": False}
    estimate = Option(BON, 8, right, {"a": 8.0, "b": 8.0})
    runs = [
        _option(BON, 4, right, 4.0),  # n <= k: the estimate's vote is as good
        _option(BON, 32, right, 32.0),
        _option(DVTS, 16, right, 90.0),
    ]
    got = {o.name: o.cost["a"] for o in options_for(estimate, runs, 8)}
    assert got == {"best_of_n@8": 8.0, "best_of_n@32": 8.0 + 24.0, "dvts(M=4)@16": 98.0}


def _world(n: int = 40, seed: int = 0) -> tuple[list[Option], dict[int, list[str]]]:
    """Easy half: everything is right; hard half: only the expensive search is right often."""
    rng = random.Random(seed)
    easy = [f"e{i}" for i in range(n // 2)]
    hard = [f"h{i}" for i in range(n // 2)]
    every = easy + hard
    est = {p: p in easy for p in every}
    bon32 = {p: p in easy or rng.random() < 0.3 for p in every}
    dvts = {p: p in easy or rng.random() < 0.8 for p in every}
    costs = {"estimate": 8.0, "bon32": 32.0, "dvts": 60.0}
    options = [
        Option(BON, 8, est, dict.fromkeys(every, costs["estimate"])),
        Option(BON, 32, bon32, dict.fromkeys(every, costs["bon32"])),
        Option(DVTS, 16, dvts, dict.fromkeys(every, costs["dvts"])),
    ]
    return options, {1: easy, 2: hard}


def test_plans_spend_on_hard_bins_within_the_limit_and_skip_unaffordable_targets() -> None:
    options, by_bin = _world()
    plans = fit_plans(options, by_bin, 2, {4: 4.0, 16: 16.0, 40: 40.0}, seed=0)
    assert [p.target for p in plans] == [16, 40]  # 4 < k: not even the estimate fits
    low, high = plans
    assert [e.name for e in low.entries] == ["best_of_n@8", "best_of_n@8"]
    assert [e.name for e in high.entries] == ["best_of_n@8", "dvts(M=4)@16"]
    for plan in plans:
        assert plan.mean_cost <= plan.limit + 1e-9
        assert plan.cv_accuracy <= 1.0 and plan.cv_mean_cost > 0
    assert high.entry(2).accuracy > high.entry(1).accuracy - 1.0
    assert high.accuracy > low.accuracy


# --- the table --------------------------------------------------------------------------------


def _plan_table(target: int = 16, hard: PlanEntry | None = None, cut: float = 0.5) -> StrategyTable:
    cells = [
        Cell(bin=b, budget=16, choice=BON, problems=1, accuracy=1.0, cv_accuracy=1.0)
        for b in (1, 2)
    ]
    easy = PlanEntry(bin=1, choice=BON, budget=8, problems=1, accuracy=1.0, mean_cost=8.0)
    hard = hard or PlanEntry(bin=2, choice=DVTS, budget=4, problems=1, accuracy=1.0, mean_cost=30.0)
    plan = BudgetPlan(
        target=target,
        limit=float(target),
        accuracy=1.0,
        mean_cost=19.0,
        cv_accuracy=1.0,
        cv_mean_cost=19.0,
        entries=[easy, hard],
    )
    return StrategyTable(difficulty_samples=8, thresholds=[cut], cells=cells, plans=[plan])


def test_a_table_with_plans_round_trips_and_picks_the_plan_not_above_the_budget() -> None:
    table = _plan_table()
    again = parse_table(table.model_dump_json())
    assert again == table
    assert table.plan_for(8) is None and table.plan_for(16) is table.plans[0]
    assert table.plan_for(100) is table.plans[0]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d["plans"][0]["entries"].pop(), "needs one entry per bin"),
        (lambda d: d["plans"].append(d["plans"][0]), "target budget twice"),
        (lambda d: d["plans"][0]["entries"][1]["choice"].update(beam_width=None), "beam_width"),
        (lambda d: d.update(cost_metric="flops"), "cost_metric"),
    ],
)
def test_a_bad_plan_is_one_config_error(change: Any, message: str) -> None:
    data = _plan_table().model_dump(mode="json")
    change(data)
    with pytest.raises(ConfigError, match=message):
        parse_table(__import__("json").dumps(data))


# --- the graph --------------------------------------------------------------------------------


def _clients() -> tuple[RecordingPolicy, SimPRM, SimEmbedder]:
    return RecordingPolicy(SimPolicy(CONFIG)), SimPRM(CONFIG), SimEmbedder(CONFIG)


async def test_best_of_n_above_k_reuses_the_estimate_and_draws_only_the_rest() -> None:
    policy, prm, embedder = _clients()
    cells = [Cell(bin=1, budget=16, choice=BON, problems=1, accuracy=1.0, cv_accuracy=1.0)]
    table = StrategyTable(difficulty_samples=8, thresholds=[], cells=cells)
    graph = create_compute_optimal_graph(
        policy=policy, prm=prm, embedder=embedder, table=table, budget=16, seed=1
    )
    out = await graph.ainvoke({"problem": make_problems(2, seed=4)[1].text})
    assert [c.n for c in policy.calls] == [8, 8]  # the estimate, then 16 - 8 new samples
    result = out["result"]
    assert out["ledger"]["samples"] == 16 and result["voters"] == 16 and result["reused"] == 8
    assert sum(g["count"] for g in result["groups"]) == 16
    assert result["answer"] == out["answer"] and result["chosen"] == "best_of_n"


async def test_a_plan_gives_bins_their_own_budgets_and_can_be_turned_off() -> None:
    policy, prm, embedder = _clients()
    problems = [p.text for p in make_problems(6, seed=2)]
    search = create_search_graph(None, policy=policy, prm=prm, embedder=embedder)
    ctx = SolveContext(strategy="compute_optimal", budget=16, seed=5)
    measured = [(await measure_difficulty(search, ctx, p)).score for p in problems]
    cut = sorted(measured)[3]  # three easy (bin 1), three hard (bin 2)
    table = _plan_table(cut=cut)
    for bin_budgets in (True, False):
        graph = create_compute_optimal_graph(
            policy=policy,
            prm=prm,
            embedder=embedder,
            table=table,
            budget=16,
            seed=5,
            bin_budgets=bin_budgets,
        )
        for problem, score in zip(problems, measured, strict=True):
            policy.calls.clear()
            out = await graph.ainvoke({"problem": problem})
            result, samples = out["result"], out["ledger"]["samples"]
            easy = score >= cut
            assert result["bin"] == (1 if easy else 2) and result["plan"] is bin_budgets
            if not bin_budgets:  # the cell: best-of-N at 16 on top of the estimate
                assert (result["chosen"], samples, result["voters"]) == ("best_of_n", 16, 16)
            elif easy:  # the estimate's own vote: nothing drawn after it
                assert len(policy.calls) == 1 and samples == 8 and result["voters"] == 8
                assert out["answer"] == result["answer"] and result["run_budget"] == 8
            else:  # DVTS at N=4 after the estimate
                assert result["chosen"] == "dvts(M=4)" and result["run_budget"] == 4
                assert result["reused"] == 0 and samples > 8 + 4


# --- calibration writes plans ------------------------------------------------------------------


async def test_calibrate_fits_plans_for_affordable_targets(tmp_path: Path) -> None:
    policy, prm, embedder = _clients()
    problems = [
        {"id": p.id, "problem": p.text, "answer": p.answer} for p in make_problems(12, seed=6)
    ]
    table = await calibrate(
        problems,
        SolveContext(seed=1, difficulty_samples=4),
        tmp_path,
        budgets=[4, 8],
        targets=[2, 4, 8, 64],
        strategies=["best_of_n", "dvts"],
        bins=2,
        policy=policy,
        prm=prm,
        embedder=embedder,
    )
    assert table.cost_metric == "samples"
    assert [p.target for p in table.plans] == [4, 8, 64]  # 2 < k = 4 cannot be afforded
    for plan in table.plans:
        assert plan.mean_cost <= plan.target + 1e-9
        assert all(e.budget >= 4 or e.choice.strategy != "best_of_n" for e in plan.entries)
    assert all(e.name == "best_of_n@4" for e in table.plans[0].entries)  # only the estimate fits
    assert table.plans[-1].accuracy >= table.plans[0].accuracy


def test_benchmark_compares_against_the_best_single_strategy_that_spent_no_more() -> None:
    """The compute-optimal benchmark's verdict: the best single row within the same mean cost,
    and a paired bootstrap interval that is exact when every problem moves together."""
    bench = load_benchmark("compute_optimal")
    co, cheap, dear = "1" * 90 + "0" * 10, "1" * 80 + "0" * 20, "1" * 100
    rows = [
        {
            "label": "best_of_n",
            "kind": "single",
            "budget": 16,
            "accuracy": 0.8,
            "samples": 16.0,
            "correct": cheap,
        },
        {
            "label": "dvts(M=4)",
            "kind": "single",
            "budget": 16,
            "accuracy": 1.0,
            "samples": 97.0,
            "correct": dear,
        },
        {
            "label": "compute_optimal",
            "kind": "compute_optimal",
            "budget": 16,
            "accuracy": 0.9,
            "samples": 17.0,
            "correct": co,
        },
    ]
    best = bench.best_single_within(rows[2], rows, "samples")
    assert best is rows[0]  # DVTS is better but spent more
    d, low, high = bench.paired_difference(co, cheap)
    assert d == pytest.approx(0.10)
    assert low < 0.10 < high and low > 0.0  # ten problems differ, all in CO's favour
    assert bench.paired_difference(cheap, cheap) == (0.0, 0.0, 0.0)
    assert bench.paired_difference("1-0", "0-0")[0] == 0.5  # a problem without a row is left out
    runs = {"a": {"correct": True}, "b": {"correct": False}, "c": {"error": "x", "correct": False}}
    assert bench.outcomes(runs, ["a", "b", "c", "d"]) == "10--"
    lines = bench.against_best_single({"cost": "samples", "rows": rows})
    assert "best_of_n@16 (16.0)" in lines[-1] and "+0.100" in lines[-1]
    # the envelope interpolates log-linearly between best-of-N@16 and DVTS@16
    assert bench.envelope_at(16.0, rows, "samples") == 0.8
    assert bench.envelope_at(97.0, rows, "samples") == 1.0
    assert bench.envelope_at(10.0, rows, "samples") is None
    mid = bench.envelope_at((16.0 * 97.0) ** 0.5, rows, "samples")
    assert mid == pytest.approx(0.9)


async def test_calibrate_reads_every_best_of_n_budget_from_one_pool(tmp_path: Path) -> None:
    """`bon_pool`: one best-of-N run of P samples per problem instead of one per budget; the
    plans may choose the budgets between the calibrated ones, and at n = P the expectation is
    the pool's own vote."""
    policy, prm, embedder = _clients()
    problems = [
        {"id": p.id, "problem": p.text, "answer": p.answer} for p in make_problems(12, seed=6)
    ]
    common: dict[str, Any] = {
        "budgets": [4, 8],
        "strategies": ["best_of_n", "dvts"],
        "bins": 2,
        "policy": policy,
        "prm": prm,
        "embedder": embedder,
    }
    ctx = SolveContext(seed=1, difficulty_samples=4)
    with pytest.raises(ConfigError, match="bon_pool must be at least the largest budget"):
        await calibrate(problems, ctx, tmp_path, bon_pool=6, **common)
    with pytest.raises(ConfigError, match="add best_of_n to the strategies"):
        await calibrate(problems, ctx, tmp_path, bon_pool=16, **{**common, "strategies": ["dvts"]})
    table = await calibrate(problems, ctx, tmp_path, targets=[6, 16], bon_pool=16, **common)
    runs = sorted(d.name for d in tmp_path.iterdir())
    assert runs == ["best_of_n-pool-n16", "difficulty", "dvts-m4-n4", "dvts-m4-n8"]
    rows = [json.loads(line) for line in (tmp_path / "best_of_n-pool-n16/results.jsonl").open()]
    assert all(len(r["result"]["answers"]) == 16 and r["ledger"]["samples"] == 16 for r in rows)
    cells = {(c.budget, c.bin): c for c in table.cells}
    assert all("best_of_n" in c.candidates for c in cells.values())  # cells at 4 and 8 too
    chosen = {e.budget for p in table.plans for e in p.entries if e.choice.strategy == "best_of_n"}
    assert chosen <= {4, 6, 8, 12, 16}
    for plan in table.plans:
        assert plan.mean_cost <= plan.target + 1e-9


def test_expected_right_is_the_vote_over_random_subsets() -> None:
    right = PoolSample(["7", "7", "3", None], [0.9, 0.8, 0.1, None], [0, 0, 1, -1], frozenset({0}))
    assert expected_right(right, 4, "weighted", random.Random(0)) == 1.0  # whole pool: the vote
    # n = 1: right exactly when one of the two "7"s is drawn (missing scores: majority)
    share = expected_right(right, 1, "weighted", random.Random(0), draws=4000)
    assert share == pytest.approx(0.5, abs=0.03)
    wrong = PoolSample(["3", "3", "7"], [0.2, 0.2, 0.9], [0, 0, 1], frozenset({1}))
    assert expected_right(wrong, 3, "weighted", random.Random(0)) == 1.0  # 0.9 > 0.4
    assert expected_right(wrong, 3, "majority", random.Random(0)) == 0.0
    assert pool_grid(4, 64, [10]) == [6, 8, 10, 12, 16, 24, 32, 48, 64]
