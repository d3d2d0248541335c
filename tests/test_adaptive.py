"""Adaptive compute within a problem: the stopping test, the round widths, the search graph."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest

from langgraph_tts import create_search_graph
from langgraph_tts.clients.types import (
    ChatMessage,
    Generation,
    Sample,
    SamplingParams,
    Scores,
    Usage,
)
from langgraph_tts.context import SearchContext
from langgraph_tts.errors import ConfigError
from langgraph_tts.sim.inprocess import SimEmbedder, SimPolicy, SimPRM
from langgraph_tts.sim.server import SimConfig
from langgraph_tts.sim.world import make_problems
from langgraph_tts.strategies.adaptive import (
    beta_leader_probability,
    decision,
    next_width,
    start_width,
)


def test_beta_leader_probability_matches_closed_forms() -> None:
    assert beta_leader_probability(0, 0) == pytest.approx(0.5, abs=1e-6)
    # Beta(1 + k, 1): P(p > 1/2) = 1 - 2^-(k+1)
    for k in (1, 3, 4, 10):
        assert beta_leader_probability(k, 0) == pytest.approx(1 - 0.5 ** (k + 1), abs=1e-5)
    # Beta(4, 2): P(p > 1/2) = 13/16
    assert beta_leader_probability(3, 1) == pytest.approx(13 / 16, abs=1e-5)
    for a, b in [(2.5, 1.2), (7.0, 3.3), (0.4, 0.0)]:
        assert beta_leader_probability(a, b) + beta_leader_probability(b, a) == pytest.approx(1)
    assert beta_leader_probability(5, 1) > beta_leader_probability(4, 1)


def test_decision_counts_or_weighs_the_votes() -> None:
    # four unanimous votes decide at 0.95 (1 - 2^-5 = 0.969); three against one do not
    assert decision(["3"] * 4, None, confidence=0.95).decided
    three_one = decision(["3", "3", "3", "4"], None, confidence=0.95)
    assert not three_one.decided and three_one.leader == "3"
    assert three_one.weights == (3.0, 1.0)
    # low PRM scores are weak evidence: four unanimous votes at 0.3 do not decide
    assert not decision(["3"] * 4, [0.3] * 4, confidence=0.95).decided
    # solutions without an answer do not vote; equal text up to spacing/case is one answer
    d = decision([None, "x + 1", "X+1 ", "  x + 1."], None, confidence=0.9)
    assert d.weights[0] == 2.0 and d.weights[1] == 1.0
    assert not decision([None, None], None, confidence=0.6).decided


@dataclass
class Ctx:
    budget: int = 16
    adaptive_start: int | None = None
    adaptive_growth: float = 2.0
    adaptive_cap: float = 4.0


def test_round_widths_start_small_grow_and_are_capped() -> None:
    assert start_width(Ctx(16)) == 4
    assert start_width(Ctx(4)) == 4
    assert start_width(Ctx(2)) == 2
    assert start_width(Ctx(64)) == 16
    assert start_width(Ctx(4), minimum=4) == 4  # beam width M
    assert start_width(Ctx(16, adaptive_start=100)) == 64  # at most 4N
    ctx = Ctx(16)
    grow = {"spent": 0.0, "allowance": 1e9, "cost_per_width": 5.0}
    assert next_width(ctx, width=4, **grow) == 8
    assert next_width(ctx, width=32, **grow) == 64
    assert next_width(ctx, width=64, **grow) == 64  # 4N per iteration
    # what the allowance pays for, or nothing below the strategy's least width
    assert next_width(ctx, width=8, spent=60, allowance=100, cost_per_width=5.0) == 8
    assert next_width(ctx, width=8, spent=96, allowance=100, cost_per_width=5.0) == 0
    assert next_width(ctx, width=8, spent=80, allowance=100, cost_per_width=5.0, minimum=8) == 0


def test_adaptive_settings_are_validated() -> None:
    with pytest.raises(ConfigError, match="adaptive_confidence"):
        SearchContext(adaptive=True, adaptive_confidence=0.4)
    with pytest.raises(ConfigError, match="adaptive_cap"):
        SearchContext(adaptive=True, adaptive_cap=0.5)


# --- in the search graph ------------------------------------------------------------------


@dataclass
class VotingPolicy:
    """Whole solutions whose answers cycle through `answers` (one per sample drawn)."""

    answers: Sequence[str]
    model: str = "voting"
    calls: list[int] = field(default_factory=list)
    _next: Any = None

    async def generate(
        self,
        messages: Sequence[ChatMessage],
        *,
        n: int = 1,
        params: SamplingParams | None = None,
        continue_final_message: bool = False,
    ) -> Generation:
        if self._next is None:
            self._next = itertools.cycle(self.answers)
        self.calls.append(n)
        samples = [
            Sample(
                f"Add them up.\n\nThe answer is $\\boxed{{{next(self._next)}}}$.", "stop", None, 10
            )
            for _ in range(n)
        ]
        return Generation(samples=samples, usage=Usage(1, 20, 10 * n))


@dataclass
class ConstantPRM:
    value: float = 0.9

    async def score(self, problem: str, steps: Sequence[Sequence[str]]) -> Scores:
        return Scores([[self.value] * len(s) for s in steps], Usage(1, 10 * len(steps), 0))


def _run(policy: Any, strategy: str = "best_of_n", **settings: Any) -> tuple[dict, list]:
    graph = create_search_graph(strategy, policy=policy, prm=ConstantPRM(), **settings)
    events: list[dict] = []
    out: dict = {}
    for mode, chunk in graph.stream(
        {"problem": "What is 1 + 2?"}, stream_mode=["custom", "values"]
    ):
        if mode == "custom":
            events.append(chunk)
        else:
            out = chunk
    return out, events


def test_a_unanimous_problem_stops_after_the_first_small_round() -> None:
    policy = VotingPolicy(["3"])
    out, events = _run(policy, budget=16, adaptive=True)
    report = out["result"]["adaptive"]
    assert policy.calls == [4]
    assert out["answer"] == "3" and out["ledger"]["samples"] == 4
    assert report["stop"] == "decided" and report["widths"] == [4]
    assert report["reference"] == 16 and report["allowance"] == 64
    assert out["result"]["stop_reason"] == "decided" and out["result"]["budget"] == 16
    assert out["result"]["voters"] == 4
    assert out["ledger"]["budget_samples"] == 64
    (round_event,) = [e for e in events if e["event"] == "adaptive"]
    assert round_event["decision"] == "decided" and round_event["confidence"] > 0.95


def test_a_split_vote_earns_wider_rounds_up_to_the_allowance() -> None:
    policy = VotingPolicy(["3", "4"])  # never decided
    out, events = _run(policy, budget=16, adaptive=True)
    report = out["result"]["adaptive"]
    assert report["stop"] == "budget"
    # doubling, then the last round shrinks to what the allowance (4 x 16) still pays for
    assert policy.calls == report["widths"] == [4, 8, 16, 32, 4]
    assert max(policy.calls) <= 4 * 16
    assert out["ledger"]["samples"] == 64 == report["allowance"]
    assert out["result"]["voters"] == 64  # every round's solutions vote
    decisions = [e["decision"] for e in events if e["event"] == "adaptive"]
    assert decisions == ["continue"] * 4 + ["budget"]
    widths = [e["width"] for e in events if e["event"] == "iteration"]
    assert widths == [4, 8, 16, 32, 4]


def test_credit_bounds_the_spend_by_the_fixed_reference() -> None:
    """adaptive_credit=0 (a pool with nothing to lend): never more than fixed N would draw."""
    policy = VotingPolicy(["3", "4"])
    out, _ = _run(policy, budget=16, adaptive=True, adaptive_credit=0)
    assert out["ledger"]["samples"] <= 16
    assert out["result"]["adaptive"]["allowance"] == 16
    assert policy.calls == [4, 8, 4]


def test_a_hard_cap_still_binds_an_adaptive_run() -> None:
    policy = VotingPolicy(["3", "4"])
    out, _ = _run(policy, budget=16, adaptive=True, max_samples=10)
    assert out["ledger"]["samples"] <= 10


def test_self_consistency_stops_early_on_majority_counts() -> None:
    policy = VotingPolicy(["7", "7", "7", "7", "7", "7", "5", "7"])
    out, _ = _run(policy, strategy="self_consistency", budget=16, adaptive=True)
    report = out["result"]["adaptive"]
    assert out["answer"] == "7" and report["stop"] == "decided"
    assert out["ledger"]["samples"] < 16


def test_chain_of_thought_ignores_adaptive() -> None:
    policy = VotingPolicy(["3"])
    out, _ = _run(policy, strategy="cot", adaptive=True)
    assert "adaptive" not in out["result"] and policy.calls == [1]


@pytest.mark.parametrize("strategy", ["rebase", "dora", "beam", "dvts", "particle_filtering"])
def test_step_level_strategies_run_in_rounds(strategy: str) -> None:
    config = SimConfig(seed=3)
    problem = make_problems(1, seed=3)[0]
    graph = create_search_graph(
        strategy,
        policy=SimPolicy(config),
        prm=SimPRM(config),
        embedder=SimEmbedder(config),
        budget=8,
        seed=5,
        adaptive=True,
    )
    out = graph.invoke({"problem": problem.text})
    report = out["result"]["adaptive"]
    assert report["stop"] in ("decided", "budget", "hard_cap")
    assert report["widths"][0] == 4
    assert max(report["widths"]) <= 32
    assert out["ledger"]["samples"] <= report["allowance"]
    assert out["result"]["voters"] == len(out["completed"])


def test_the_command_line_flag_sets_adaptive() -> None:
    from langgraph_tts.cli import build_parser, context_from_args

    args = build_parser().parse_args(["solve", "1+1?", "--strategy", "best_of_n", "--adaptive"])
    assert context_from_args(args).adaptive is True
    args = build_parser().parse_args(["eval", "--dataset", "sim:easy", "--out", "x", "--adaptive"])
    assert context_from_args(args).adaptive is True
    args = build_parser().parse_args(["solve", "1+1?"])
    assert context_from_args(args).adaptive is False


def test_compute_optimal_estimates_difficulty_on_exactly_k_samples() -> None:
    from langgraph_tts.compute_optimal.graph import difficulty_overrides
    from langgraph_tts.context import ComputeOptimalContext

    ctx = ComputeOptimalContext(adaptive=True, difficulty_samples=8)
    assert difficulty_overrides(ctx)["adaptive"] is False
