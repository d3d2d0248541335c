"""Adaptive compute across problems: a pool that lends what easy problems did not spend.

An adaptive run (`adaptive=true`) measures its own *reference*, the samples fixed N would
have drawn on it (round 0's samples x N / w_0; exactly N for best-of-N), and may spend its
reference plus whatever it borrows. With `adaptive_pool=<name>` the run uses the pool of
that name (in this process):

- at the end of an undecided round, when its allowance cannot pay for the next, wider
  round, the run *borrows* the shortfall: the pool lends at most `share` of what it holds
  (and never more than it holds);
- when the run votes, it *settles*: `reference - spent + borrowed` goes (back) into the pool,
  so an easy problem that stopped early adds its savings and a hard one repays its loan.

Credit is only lent from savings already made, and a run never spends more than its
reference plus what it borrowed (the search graph caps it), so over the problems of one
pool, samples spent <= sum of the references: the mean samples per problem do not exceed what
fixed N would have drawn (for step-level search the reference is an estimate; see
docs/adaptive.md for how close it is). A run that fails after borrowing does not repay (the
pool only ever errs on the side of spending less).

Pools are registered by name in a process-wide weak registry, so the setting stays a string
(JSON, Studio, the eval summary). The pool is lock-protected: call it from asyncio tasks or
threads.
"""

from __future__ import annotations

import itertools
import math
import threading
import weakref
from collections.abc import Awaitable, Callable
from typing import Any

from ..errors import ConfigError
from ..settings import overlay

__all__ = ["BudgetPool", "get_pool"]

_POOLS: weakref.WeakValueDictionary[str, BudgetPool] = weakref.WeakValueDictionary()
_IDS = itertools.count()


def get_pool(name: str) -> BudgetPool:
    """The live pool registered as `name` (a `ConfigError` if there is none)."""
    pool = _POOLS.get(name)
    if pool is None:
        msg = f"no budget pool named {name!r} in this process (create a BudgetPool first)"
        raise ConfigError(msg)
    return pool


class BudgetPool:
    """Cross-problem budget pool (see the module docstring).

    Args:
        share: Most of the pool's balance one loan may take.
        name: Registry name (default: a fresh `pool-<k>`); keep a reference to the pool while
            runs use it.
    """

    def __init__(self, *, share: float = 0.5, name: str | None = None) -> None:
        if not 0.0 < share <= 1.0:
            raise ValueError("share must be in (0, 1]")
        self.share = share
        self.name = name or f"pool-{next(_IDS)}"
        self._lock = threading.Lock()
        self.balance = 0.0
        """Samples the pool holds: savings settled minus loans outstanding."""
        self.spent = 0.0
        self.reference = 0.0
        self.settled = 0
        self.lent = 0
        _POOLS[self.name] = self

    def borrow(self, samples: float) -> int:
        """Lend up to `samples` (at most `share` of the balance, never below zero)."""
        with self._lock:
            got = max(0, min(math.floor(samples), math.floor(self.balance * self.share)))
            self.balance -= got
            self.lent += got
            return got

    def settle(self, *, spent: float, reference: float, borrowed: float = 0.0) -> None:
        """Book a finished run: `reference - spent + borrowed` joins the balance."""
        with self._lock:
            self.balance += float(reference) - float(spent) + float(borrowed)
            self.spent += float(spent)
            self.reference += float(reference)
            self.settled += 1

    def summary(self) -> dict[str, Any]:
        """Totals for a run's summary: runs settled, mean samples vs mean reference, lent."""
        with self._lock:
            n = max(self.settled, 1)
            return {
                "pool": self.name,
                "problems": self.settled,
                "mean_samples": self.spent / n,
                "mean_reference": self.reference / n,
                "balance": self.balance,
                "lent": self.lent,
            }

    def settings(self) -> dict[str, Any]:
        """The settings that make a run use this pool."""
        return {"adaptive": True, "adaptive_pool": self.name}

    def wrap(
        self, solver: Callable[..., Awaitable[dict[str, Any]]], context: Any
    ) -> Callable[[str], Awaitable[dict[str, Any]]]:
        """A `solve(problem)` that runs `solver(problem, context=context + this pool)`."""
        ctx = overlay(context, self.settings())

        async def solve(problem: str) -> dict[str, Any]:
            return await solver(problem, context=ctx)

        return solve
