"""The cross-problem budget pool: lends what easy problems saved, never more."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

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
from langgraph_tts.solve import Solver
from langgraph_tts.strategies.pool import BudgetPool


def test_nothing_is_lent_before_something_is_saved() -> None:
    pool = BudgetPool()
    first = pool.grant()
    assert first.credit == 0
    pool.settle(first, spent=4, reference=16)  # an easy problem saved 12
    second = pool.grant()
    assert second.credit == 6  # half of the 12 saved
    assert pool.available == 6
    third = pool.grant()
    assert third.credit == 3  # half of what is still free
    pool.settle(second, spent=22, reference=16)  # borrowed 6
    pool.settle(third, spent=16, reference=16)
    assert pool.balance == 6 and pool.available == 6
    assert pool.summary()["mean_samples"] <= pool.summary()["mean_reference"]


def test_credit_is_capped_by_a_multiple_of_the_mean_reference() -> None:
    pool = BudgetPool(share=1.0, cap=3.0)
    for _ in range(10):
        pool.settle(pool.grant(), spent=0, reference=16)
    assert pool.grant().credit == 48
    assert BudgetPool(share=1.0, max_credit=5).grant().credit == 0
    fixed = BudgetPool(share=1.0, max_credit=5)
    fixed.settle(fixed.grant(), spent=0, reference=16)
    assert fixed.grant().credit == 5


def test_a_failed_problem_only_frees_its_credit() -> None:
    pool = BudgetPool()
    pool.settle(pool.grant(), spent=0, reference=10)
    g = pool.grant()
    pool.settle_output(g, None)
    assert pool.available == 10 and pool.settled == 1


@settings(max_examples=200, deadline=None)
@given(
    runs=st.lists(
        st.tuples(st.floats(1, 100), st.floats(0, 1), st.booleans()), min_size=1, max_size=40
    ),
    share=st.floats(0.05, 1.0),
    concurrent=st.integers(1, 8),
)
def test_total_spend_never_exceeds_the_total_reference(
    runs: list[tuple[float, float, bool]], share: float, concurrent: int
) -> None:
    """Runs spend anything up to reference + credit; problems overlap `concurrent` at a time."""
    pool = BudgetPool(share=share)
    open_: list[tuple[Any, float, float, bool]] = []
    for ref, frac, greedy in runs:
        grant = pool.grant()
        open_.append((grant, ref, frac, greedy))
        if len(open_) >= concurrent:
            g, r, f, greedy_ = open_.pop(0)
            pool.settle(g, spent=(r + g.credit) if greedy_ else f * r, reference=r)
    for g, r, f, greedy_ in open_:
        pool.settle(g, spent=(r + g.credit) if greedy_ else f * r, reference=r)
    assert pool.spent <= pool.reference + 1e-6
    assert pool.reserved == 0


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
    assert all(r["reference"] == 16 for r in reports)
    assert reports[4]["credit"] > 0 and spent[4] > 16  # a hard problem borrowed
    assert sum(spent) <= 16 * len(problems)  # never more than fixed N on these problems
    assert pool.summary()["mean_samples"] <= 16
