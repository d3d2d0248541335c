"""The cross-problem budget pool: lends what easy problems saved, never more."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from langgraph_tts.clients.types import (
    ChatMessage,
    Generation,
    Sample,
    SamplingParams,
    Scores,
    Usage,
)
from langgraph_tts.context import SolveContext
from langgraph_tts.errors import ConfigError
from langgraph_tts.solve import Solver
from langgraph_tts.strategies.pool import BudgetPool, get_pool


def test_nothing_is_lent_before_something_is_saved() -> None:
    pool = BudgetPool()
    assert pool.borrow(10) == 0
    pool.settle(spent=4, reference=16)  # an easy problem saved 12
    assert pool.borrow(100) == 6  # at most half of the balance per loan
    assert pool.borrow(2) == 2
    assert pool.balance == 4
    pool.settle(spent=24, reference=16, borrowed=8)  # the loans are repaid in the settlement
    assert pool.balance == 4 and pool.lent == 8
    assert pool.summary()["mean_samples"] <= pool.summary()["mean_reference"]


def test_pools_are_found_by_name_and_a_missing_one_fails() -> None:
    pool = BudgetPool(name="test-pool-a")
    assert get_pool("test-pool-a") is pool
    assert pool.settings() == {"adaptive": True, "adaptive_pool": "test-pool-a"}
    with pytest.raises(ConfigError, match="no budget pool"):
        get_pool("no-such-pool")


@settings(max_examples=200, deadline=None)
@given(
    runs=st.lists(
        st.tuples(st.floats(1, 100), st.floats(0, 1), st.floats(0, 500)), min_size=1, max_size=40
    ),
    share=st.floats(0.05, 1.0),
    concurrent=st.integers(1, 8),
)
def test_total_spend_never_exceeds_the_total_reference(
    runs: list[tuple[float, float, float]], share: float, concurrent: int
) -> None:
    """Runs overlap `concurrent` at a time; each spends up to its reference plus its loans."""
    pool = BudgetPool(share=share)
    open_: list[tuple[float, float, int]] = []
    for ref, frac, ask in runs:
        open_.append((ref, frac, pool.borrow(ask)))
        assert pool.balance >= 0
        if len(open_) >= concurrent:
            r, f, got = open_.pop(0)
            pool.settle(spent=f * (r + got), reference=r, borrowed=got)
    for r, f, got in open_:
        pool.settle(spent=f * (r + got), reference=r, borrowed=got)
    assert pool.spent <= pool.reference + 1e-6


@dataclass
class ByProblemPolicy:
    """Unanimous answers for problems containing 'easy', a split vote otherwise."""

    model: str = "by-problem"
    calls: list[int] = field(default_factory=list)
    _split: Any = field(default_factory=lambda: itertools.cycle(["3", "4"]))

    async def generate(
        self,
        messages: Sequence[ChatMessage],
        *,
        n: int = 1,
        params: SamplingParams | None = None,
        continue_final_message: bool = False,
    ) -> Generation:
        easy = "easy" in messages[1]["content"]
        self.calls.append(n)
        samples = [
            Sample(
                f"So.\n\nThe answer is $\\boxed{{{'3' if easy else next(self._split)}}}$.",
                "stop",
                None,
                10,
            )
            for _ in range(n)
        ]
        return Generation(samples=samples, usage=Usage(1, 20, 10 * n))


@dataclass
class ConstantPRM:
    async def score(self, problem: str, steps: Sequence[Sequence[str]]) -> Scores:
        return Scores([[0.9] * len(s) for s in steps], Usage(1, 10 * len(steps), 0))


def test_the_pool_moves_what_easy_problems_saved_to_hard_ones_through_a_solver() -> None:
    ctx = SolveContext(strategy="best_of_n", budget=16)
    solver = Solver(ctx, policy=ByProblemPolicy(), prm=ConstantPRM())
    pool = BudgetPool()
    solve = pool.wrap(solver, ctx)
    problems = [f"easy problem {i}" for i in range(4)] + ["hard problem A", "hard problem B"]

    async def run() -> list[dict[str, Any]]:
        return [await solve(p) for p in problems]

    outs = asyncio.run(run())
    spent = [o["ledger"]["samples"] for o in outs]
    reports = [o["result"]["adaptive"] for o in outs]
    assert spent[:4] == [4, 4, 4, 4]  # decided after the first round
    assert all(r["reference"] == 16 and r["pool"] == pool.name for r in reports)
    assert reports[4]["borrowed"] > 0 and spent[4] > 16  # a hard problem borrowed
    assert reports[4]["stop"] == "budget"
    assert sum(spent) <= 16 * len(problems)  # never more than fixed N on these problems
    summary = pool.summary()
    assert summary["problems"] == 6 and summary["mean_samples"] <= 16
    assert pool.balance == 16 * len(problems) - sum(spent)


def test_an_unknown_pool_fails_before_anything_is_spent() -> None:
    policy = ByProblemPolicy()
    ctx = SolveContext(strategy="best_of_n", budget=16, adaptive=True, adaptive_pool="nope")
    with pytest.raises(ConfigError, match="no budget pool"):
        asyncio.run(Solver(ctx, policy=policy, prm=ConstantPRM())("easy 1"))
    assert policy.calls == []
