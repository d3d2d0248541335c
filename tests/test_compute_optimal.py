"""Compute-optimal selection (Snell et al.): bins, the strategy table, CV, JSON, the graph."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest
from fakes import RecordingPolicy
from hypothesis import given, settings
from hypothesis import strategies as st

from langgraph_tts.compute_optimal import (
    CandidateRun,
    Cell,
    Choice,
    StrategyTable,
    assign_bin,
    calibrate,
    candidates_for,
    create_compute_optimal_graph,
    fit_bins,
    fit_table,
    format_table,
    load_table,
    measure_difficulty,
    parse_table,
    write_table,
)
from langgraph_tts.context import SolveContext as SearchContext
from langgraph_tts.errors import ConfigError
from langgraph_tts.search.graph import create_search_graph
from langgraph_tts.sim.inprocess import SimEmbedder, SimPolicy, SimPRM
from langgraph_tts.sim.server import SimConfig
from langgraph_tts.sim.world import make_problems

BOX = Choice(strategy="best_of_n")
BEAM = Choice(strategy="beam", beam_width="sqrt")
BEAM4 = Choice(strategy="beam", beam_width=4)


def _table(
    thresholds: list[float], picks: dict[int, Choice], budgets: tuple[int, ...] = (4,)
) -> StrategyTable:
    cells = [
        Cell(bin=b, budget=n, choice=c, problems=1, accuracy=1.0, cv_accuracy=1.0)
        for n in budgets
        for b, c in picks.items()
    ]
    return StrategyTable(difficulty_samples=8, thresholds=thresholds, cells=cells)


# --- bins -------------------------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(
    scores=st.lists(st.floats(0.0, 1.0), min_size=1, max_size=60),
    bins=st.integers(1, 7),
    probes=st.lists(st.floats(-1.0, 2.0), min_size=2, max_size=10),
)
def test_bins_are_monotone_and_cover_every_score(
    scores: list[float], bins: int, probes: list[float]
) -> None:
    thresholds = fit_bins(scores, bins)
    assert len(thresholds) == bins - 1
    assert thresholds == sorted(thresholds)
    for s in scores + probes:
        assert 1 <= assign_bin(s, thresholds) <= bins
    ordered = sorted(probes)
    got = [assign_bin(s, thresholds) for s in ordered]
    assert got == sorted(got, reverse=True)  # a higher score (easier) never gets a harder bin


def test_quintiles_of_distinct_scores_are_balanced_and_bin_1_is_easiest() -> None:
    scores = [i / 100 for i in range(100)]
    thresholds = fit_bins(scores)
    counts = [sum(assign_bin(s, thresholds) == b for s in scores) for b in range(1, 6)]
    assert counts == [20, 20, 20, 20, 20]
    assert assign_bin(0.99, thresholds) == 1 and assign_bin(0.0, thresholds) == 5
    with pytest.raises(ValueError, match="no problems"):
        fit_bins([])


# --- fitting ----------------------------------------------------------------------------------


def _synthetic(n: int = 200, seed: int = 0) -> tuple[dict[str, float], list[CandidateRun]]:
    """Best-of-N is right on easy problems, beam search on hard ones."""
    rng = random.Random(seed)
    scores = {f"p{i}": rng.random() for i in range(n)}

    def outcomes(easy_p: float, hard_p: float) -> dict[str, bool]:
        return {i: rng.random() < (easy_p if s >= 0.5 else hard_p) for i, s in scores.items()}

    runs = [
        CandidateRun(BOX, 16, outcomes(0.95, 0.2), cost=1.0),
        CandidateRun(BEAM, 16, outcomes(0.6, 0.7), cost=2.0),
    ]
    return scores, runs


def test_cv_picks_the_better_strategy_per_bin() -> None:
    scores, runs = _synthetic()
    table = fit_table(scores, runs, bins=2, difficulty_samples=8, source={"dataset": "synthetic"})
    assert table.cell(1, 16).choice == BOX  # easy bin
    assert table.cell(2, 16).choice == BEAM  # hard bin
    for b in (1, 2):
        cell = table.cell(b, 16)
        assert cell.candidates[cell.choice.name] == max(cell.candidates.values())
        assert cell.accuracy == pytest.approx(cell.candidates[cell.choice.name], abs=1e-4)
        assert 0.5 < cell.cv_accuracy <= 1.0
    assert sum(table.cell(b, 16).problems for b in (1, 2)) == len(scores)  # every problem binned
    assert "best_of_n" in format_table(table) and "beam(M=sqrt)" in format_table(table)


def test_a_dominant_candidate_has_cv_accuracy_equal_to_its_accuracy() -> None:
    scores, runs = _synthetic(n=60, seed=3)
    best = CandidateRun(BEAM4, 16, dict.fromkeys(scores, True), cost=0.5)
    table = fit_table(scores, [*runs, best], bins=3)
    for b in (1, 2, 3):
        assert table.cell(b, 16).choice == BEAM4
        assert table.cell(b, 16).cv_accuracy == 1.0


def test_ties_go_to_the_cheaper_then_the_simpler_candidate() -> None:
    scores = {f"p{i}": i / 10 for i in range(10)}
    same = {p: i % 2 == 0 for i, p in enumerate(scores)}
    cheap_last = [CandidateRun(BEAM, 4, same, cost=3.0), CandidateRun(BEAM4, 4, same, cost=1.0)]
    assert fit_table(scores, cheap_last, bins=1).cell(1, 4).choice == BEAM4
    equal_cost = [CandidateRun(BOX, 4, same), CandidateRun(BEAM, 4, same)]
    assert fit_table(scores, equal_cost, bins=1).cell(1, 4).choice == BOX


def test_problems_missing_from_a_run_are_left_out_and_empty_bins_use_all() -> None:
    scores = {"a": 0.9, "b": 0.8, "c": 0.2, "d": 0.1}
    runs = [
        CandidateRun(BOX, 4, {"a": True, "b": True, "c": False}),  # d failed
        CandidateRun(BEAM, 4, {"a": False, "b": True, "c": True, "d": True}),
    ]
    table = fit_table(scores, runs, bins=2)
    assert table.cell(1, 4).problems == 2 and table.cell(2, 4).problems == 1
    assert table.cell(2, 4).choice == BEAM
    lonely = fit_table({"a": 0.5}, [CandidateRun(BOX, 4, {"a": True})], bins=3)
    assert [lonely.cell(b, 4).problems for b in (1, 2, 3)].count(0) == 2
    with pytest.raises(ValueError, match="answered by every candidate"):
        fit_table(scores, [CandidateRun(BOX, 4, {})], bins=2)


def test_candidates_expand_and_deduplicate_per_budget() -> None:
    names = ["best_of_n", "beam", "dvts"]
    assert [c.name for c in candidates_for(names, 4)] == [
        "best_of_n",
        "beam(M=sqrt)",
        "beam(M=4)",
        "dvts(M=4)",
    ]
    assert [c.name for c in candidates_for(names, 16)] == ["best_of_n", "beam(M=sqrt)", "dvts(M=4)"]
    assert BEAM.width_for(64) == 8 and BEAM.width_for(2) == 1 and BOX.width_for(16) is None
    with pytest.raises(ConfigError, match="lookahead"):
        candidates_for(["lookahead"], 4)


def test_budget_maps_to_the_nearest_fitted_budget_not_above() -> None:
    table = _table([0.5], {1: BOX, 2: BEAM}, budgets=(4, 16))
    assert [table.budget_for(n) for n in (4, 5, 15, 16, 256)] == [4, 4, 4, 16, 16]
    with pytest.raises(ConfigError, match="below every budget"):
        table.budget_for(2)
    picked = table.select(0.2, 32)
    assert (picked.bin, picked.budget, picked.cell.choice) == (2, 16, BEAM)


# --- JSON -------------------------------------------------------------------------------------


def test_json_round_trip_and_file_reload(tmp_path: Path) -> None:
    scores, runs = _synthetic(n=40)
    table = fit_table(scores, runs, bins=3, source={"dataset": "synthetic", "budgets": [16]})
    assert parse_table(table.model_dump_json()) == table
    path = write_table(table, tmp_path / "sub" / "table.json")
    assert load_table(path) == table
    edited = _table([0.5], {1: BOX, 2: BEAM})
    path.write_text(edited.model_dump_json(indent=1))  # a new version is read again
    assert load_table(path) == edited


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (
            lambda d: d["cells"][0]["choice"].update(strategy="lookahead"),
            r"cells\.0\.choice\.strategy",
        ),
        (lambda d: d.pop("difficulty_samples"), "difficulty_samples: Field required"),
        (lambda d: d.update(thresholds=[0.9, 0.1]), "ascending"),
        (lambda d: d["cells"].pop(), r"missing \[\(2, 4\)\]"),
        (lambda d: d["cells"][0]["choice"].update(strategy="beam"), "beam needs beam_width"),
        (lambda d: d["cells"][1]["choice"].update(beam_width=0), r"cells\.1\.choice\.beam_width"),
        (lambda d: d.update(colour="red"), "colour: Extra inputs are not permitted"),
    ],
)
def test_a_bad_table_is_one_config_error_naming_the_field(mutate: Any, message: str) -> None:
    data = json.loads(_table([0.5], {1: BOX, 2: BEAM}).model_dump_json())
    mutate(data)
    with pytest.raises(ConfigError, match=message) as err:
        parse_table(json.dumps(data), source="t.json")
    assert str(err.value).startswith("t.json: invalid strategy table: ")
    assert "\n" not in str(err.value)
    with pytest.raises(ConfigError, match="not valid JSON"):
        parse_table("{", source="t.json")


# --- the graph, in process --------------------------------------------------------------------

CONFIG = SimConfig(seed=0)


def _clients() -> tuple[RecordingPolicy, SimPRM, SimEmbedder]:
    return RecordingPolicy(SimPolicy(CONFIG)), SimPRM(CONFIG), SimEmbedder(CONFIG)


async def test_bins_route_problems_to_different_strategies() -> None:
    policy, prm, embedder = _clients()
    problems = [p.text for p in make_problems(6, seed=2)]
    ctx = SearchContext(strategy="compute_optimal", budget=4, seed=5)
    search = create_search_graph(None, policy=policy, prm=prm, embedder=embedder)
    measured = [(await measure_difficulty(search, ctx, p)).score for p in problems]
    cut = (min(measured) + max(measured)) / 2
    table = _table([cut], {1: BOX, 2: BEAM})
    graph = create_compute_optimal_graph(
        policy=policy, prm=prm, embedder=embedder, table=table, budget=4, seed=5
    )
    chosen = {}
    for problem, score in zip(problems, measured, strict=True):
        policy.calls.clear()
        events: list[dict[str, Any]] = []
        out: dict[str, Any] = {}
        async for mode, chunk in graph.astream(
            {"problem": problem}, stream_mode=["custom", "values"]
        ):
            if mode == "custom":
                events.append(chunk)
            else:
                out = chunk
        result = out["result"]
        assert result["difficulty"] == pytest.approx(score, abs=1e-6)
        assert result["bin"] == (1 if score >= cut else 2)
        assert result["strategy"] == "compute_optimal"
        chosen[result["bin"]] = (result["chosen"], result["beam_width"])
        assert [e["event"] for e in events] == ["compute_optimal"]
        assert events[0]["bin"] == result["bin"] and events[0]["chosen"] == result["chosen"]
        first = policy.calls[0]  # the estimate: k samples in one request, from scratch
        assert first.n == 8 and not first.continue_final_message
        assert out["ledger"]["samples"] == sum(c.n for c in policy.calls)
        assert out["answer"] is not None
    assert chosen == {1: ("best_of_n", None), 2: ("beam(M=sqrt)", 2)}


async def test_a_hard_cap_spent_on_the_estimate_answers_with_its_vote() -> None:
    policy, prm, embedder = _clients()
    table = _table([0.5], {1: BEAM, 2: BEAM})
    graph = create_compute_optimal_graph(
        policy=policy, prm=prm, embedder=embedder, table=table, budget=4, max_samples=8
    )
    out = await graph.ainvoke({"problem": make_problems(1, seed=4)[0].text})
    assert out["ledger"]["samples"] == 8 == sum(c.n for c in policy.calls)
    assert len(policy.calls) == 1
    assert out["result"]["stop_reason"] == "hard_cap" and out["answer"] is not None


@pytest.mark.parametrize(
    ("settings_", "message"),
    [
        ({"table": None}, "needs a strategy table"),
        ({"table": "/nonexistent/table.json"}, "not found"),
        ({"difficulty_samples": 4}, "fitted on k=8"),
        ({"budget": 2}, "below every budget"),
    ],
)
async def test_table_problems_fail_before_any_request(
    settings_: dict[str, Any], message: str
) -> None:
    policy, prm, embedder = _clients()
    base: dict[str, Any] = {"table": _table([0.5], {1: BOX, 2: BEAM}), "budget": 4}
    graph = create_compute_optimal_graph(
        policy=policy, prm=prm, embedder=embedder, **{**base, **settings_}
    )
    with pytest.raises(ConfigError, match=message):
        await graph.ainvoke({"problem": "What is 2 + 3?"})
    assert policy.calls == []


async def test_an_oracle_table_cannot_route() -> None:
    policy, prm, embedder = _clients()
    oracle = _table([0.5], {1: BOX, 2: BEAM}).model_copy(update={"difficulty": "oracle"})
    graph = create_compute_optimal_graph(
        policy=policy, prm=prm, embedder=embedder, table=oracle, budget=4
    )
    with pytest.raises(ConfigError, match="oracle"):
        await graph.ainvoke({"problem": "What is 2 + 3?"})


# --- calibration, in process ------------------------------------------------------------------


def _validation(n: int) -> list[dict[str, str]]:
    return [{"id": p.id, "problem": p.text, "answer": p.answer} for p in make_problems(n, seed=6)]


async def test_calibrate_fits_a_table_and_resumes(tmp_path: Path) -> None:
    policy, prm, embedder = _clients()
    problems = _validation(10)
    ctx = SearchContext(seed=1, difficulty_samples=4)
    kwargs: dict[str, Any] = {
        "budgets": [4, 2],
        "strategies": ["best_of_n", "beam"],
        "bins": 2,
        "policy": policy,
        "prm": prm,
        "embedder": embedder,
    }
    labels: list[str] = []
    table = await calibrate(problems, ctx, tmp_path, on_run=lambda s, _: labels.append(s), **kwargs)
    assert labels == [
        "difficulty (k=4)",
        "best_of_n @ N=2",
        "beam(M=sqrt) @ N=2",
        "beam(M=4) @ N=2",
        "best_of_n @ N=4",
        "beam(M=sqrt) @ N=4",
        "beam(M=4) @ N=4",
    ]
    assert table.difficulty == "predicted" and table.difficulty_samples == 4
    assert table.budgets == [2, 4] and table.bins == 2
    assert table.source["problems"] == 10
    assert all(0.0 <= t <= 1.0 for t in table.thresholds)
    assert sum(table.cell(b, 4).problems for b in (1, 2)) == 10
    rows = (tmp_path / "beam-m2-n4" / "results.jsonl").read_text().splitlines()
    assert len(rows) == 10
    policy.calls.clear()
    assert await calibrate(problems, ctx, tmp_path, **kwargs) == table  # resumed: no requests
    assert policy.calls == []


async def test_calibrate_on_oracle_difficulty_bins_pass_rates(tmp_path: Path) -> None:
    policy, prm, embedder = _clients()
    table = await calibrate(
        _validation(8),
        SearchContext(seed=2, difficulty_samples=4),
        tmp_path,
        budgets=[2],
        strategies=["best_of_n"],
        bins=2,
        difficulty="oracle",
        policy=policy,
        prm=prm,
        embedder=embedder,
    )
    assert table.difficulty == "oracle"
    assert all((t * 8).is_integer() for t in table.thresholds)  # medians of k=4 pass rates
