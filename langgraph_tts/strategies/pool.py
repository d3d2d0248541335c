"""Adaptive compute across problems: a pool that lends what easy problems did not spend.

An adaptive run (`adaptive=true`) measures its own *reference*, the samples fixed N would
have drawn on it (round 0's samples x N / w_0; exactly N for best-of-N), and may spend its
reference plus a *credit* (`adaptive_credit`). The pool decides the credits of an
evaluation's problems:

- before a problem starts, `grant()` lends it `share` of what the pool holds (at most
  `max_credit`, by default (adaptive_cap - 1) x the mean reference seen so far), and reserves
  it;
- when it ends, `settle(grant, spent=..., reference=...)` adds `reference - spent` to the
  pool (what an easy problem did not spend, or minus what a hard one borrowed) and frees the
  reservation.

Credit is only lent from savings already made, and a run never spends more than its
reference plus its credit (the search graph caps it), so over the problems the pool has
settled, samples spent <= sum of references: the mean samples per problem do not exceed what
fixed N would have drawn (up to the reference being an estimate for step-level search; see
docs/adaptive.md for how close it is). Problems that start before anything was saved get no
credit.

The pool is synchronous and lock-protected: call it from asyncio tasks or threads.
`wrap(solver, context)` turns any `Solver`-like callable into one that asks the pool first.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ..settings import overlay

__all__ = ["BudgetPool", "Grant"]


@dataclass(frozen=True)
class Grant:
    """Credit lent to one problem (samples beyond its fixed-N reference)."""

    id: int
    credit: int


class BudgetPool:
    """Cross-problem budget pool (see the module docstring).

    Args:
        share: Fraction of the pool's free balance lent to one problem.
        max_credit: Most credit one problem gets; None: `cap` x the mean reference of the
            problems settled so far.
        cap: Multiple of the mean reference used when `max_credit` is None (adaptive_cap - 1).
    """

    def __init__(self, *, share: float = 0.5, max_credit: float | None = None, cap: float = 3.0):
        if not 0.0 < share <= 1.0:
            raise ValueError("share must be in (0, 1]")
        self.share = share
        self.max_credit = max_credit
        self.cap = cap
        self._lock = threading.Lock()
        self._next_id = 0
        self._open: dict[int, int] = {}
        self.balance = 0.0
        """Saved samples: sum of (reference - spent) over settled problems."""
        self.spent = 0.0
        self.reference = 0.0
        self.settled = 0
        self.lent = 0

    @property
    def reserved(self) -> int:
        """Credit lent to problems still running."""
        return sum(self._open.values())

    @property
    def available(self) -> float:
        """What the pool can lend now."""
        return max(0.0, self.balance - self.reserved)

    def grant(self) -> Grant:
        """Lend the next problem its credit (0 while nothing has been saved)."""
        with self._lock:
            limit = self.max_credit
            if limit is None:
                mean_ref = self.reference / self.settled if self.settled else 0.0
                limit = self.cap * mean_ref
            credit = max(0, math.floor(min(self.available * self.share, limit)))
            grant = Grant(self._next_id, credit)
            self._next_id += 1
            self._open[grant.id] = credit
            self.lent += credit
            return grant

    def settle(self, grant: Grant, *, spent: float, reference: float | None) -> None:
        """Book a finished problem: its saving (or overdraft) joins the balance.

        A problem that failed or did not run adaptively (`reference` None) only frees its
        credit (what it spent is not compared with anything).
        """
        with self._lock:
            self._open.pop(grant.id, None)
            if reference is None:
                return
            self.balance += float(reference) - float(spent)
            self.spent += float(spent)
            self.reference += float(reference)
            self.settled += 1

    def settle_output(self, grant: Grant, out: Mapping[str, Any] | None) -> None:
        """`settle` from a solve output (`result["adaptive"]["reference"]`, `ledger.samples`)."""
        out = out or {}
        report = (out.get("result") or {}).get("adaptive") or {}
        spent = (out.get("ledger") or {}).get("samples", 0)
        self.settle(grant, spent=spent, reference=report.get("reference"))

    def summary(self) -> dict[str, Any]:
        """Totals for a run's summary: problems settled, samples spent vs references, lent."""
        with self._lock:
            n = max(self.settled, 1)
            return {
                "problems": self.settled,
                "mean_samples": self.spent / n,
                "mean_reference": self.reference / n,
                "balance": self.balance,
                "lent": self.lent,
            }

    def wrap(
        self, solver: Callable[..., Awaitable[dict[str, Any]]], context: Any
    ) -> Callable[[str], Awaitable[dict[str, Any]]]:
        """A `solve(problem)` that runs `solver(problem, context=...)` on pool credit.

        `context` is the evaluation's settings model (e.g. `SolveContext`); each problem runs
        with `adaptive=True` and `adaptive_credit` = its grant. The problem's report gets
        `result["adaptive"]["credit"]`.
        """

        async def solve(problem: str) -> dict[str, Any]:
            grant = self.grant()
            out: dict[str, Any] | None = None
            try:
                ctx = overlay(context, {"adaptive": True, "adaptive_credit": grant.credit})
                out = await solver(problem, context=ctx)
                report = (out.get("result") or {}).get("adaptive")
                if isinstance(report, dict):
                    report["credit"] = grant.credit
                return out
            finally:
                self.settle_output(grant, out)

        return solve
