"""Particle filtering: multinomial resampling by logit-softmax PRM weights, in the search graph."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from langgraph_tts import create_search_graph
from langgraph_tts.sim.inprocess import SimEmbedder, SimPolicy, SimPRM
from langgraph_tts.sim.server import SimConfig
from langgraph_tts.sim.world import make_problems
from langgraph_tts.strategies.particle_filtering import resample


@settings(max_examples=100, deadline=None)
@given(
    scores=st.lists(st.floats(0.0, 1.0), min_size=1, max_size=20),
    budget=st.integers(0, 64),
    temperature=st.floats(0.05, 5.0),
)
def test_resampling_draws_exactly_the_budget(
    scores: list[float], budget: int, temperature: float
) -> None:
    counts, probs = resample(scores, budget, temperature, np.random.default_rng(0))
    assert sum(counts) == budget and all(c >= 0 for c in counts)
    assert math.isclose(sum(probs), 1.0, rel_tol=1e-9)


def test_weights_are_the_softmax_of_the_logit_of_the_scores() -> None:
    scores = [0.9, 0.5, 0.1]
    _, probs = resample(scores, 8, 1.0, np.random.default_rng(0))
    odds = [s / (1 - s) for s in scores]  # exp(logit(s))
    assert probs == pytest.approx([o / sum(odds) for o in odds])


def test_draws_follow_the_weights() -> None:
    counts, probs = resample([0.8, 0.6, 0.3, 0.3], 40_000, 1.0, np.random.default_rng(1))
    assert [c / 40_000 for c in counts] == pytest.approx(probs, abs=0.01)


def test_a_low_weight_particle_still_gets_rollouts_sometimes() -> None:
    """Unlike REBASE's rounding (which gives it none at T_b = 0.1), sampling keeps it alive."""
    rng = np.random.default_rng(2)
    hits = sum(resample([0.95, 0.6], 4, 1.0, rng)[0][1] > 0 for _ in range(200))
    assert 50 < hits < 200


def test_particle_filtering_runs_in_the_search_graph_reproducibly() -> None:
    config = SimConfig(seed=4)
    problem = make_problems(1, seed=4)[0]

    def run() -> dict:
        graph = create_search_graph(
            "particle_filtering",
            policy=SimPolicy(config),
            prm=SimPRM(config),
            embedder=SimEmbedder(config),
            budget=8,
            seed=3,
        )
        return graph.invoke({"problem": problem.text})

    first, second = run(), run()
    assert first["result"]["strategy"] == "particle_filtering" and first["answer"] is not None
    assert first["ledger"]["samples"] == second["ledger"]["samples"]
    assert [n["rollouts"] for n in first["nodes"]] == [n["rollouts"] for n in second["nodes"]]
    by_iteration: dict[int, int] = {}
    for node in first["nodes"][1:]:
        by_iteration[node["iteration"]] = by_iteration.get(node["iteration"], 0) + node["rollouts"]
    assert all(total in (0, 8) for total in by_iteration.values()), by_iteration
