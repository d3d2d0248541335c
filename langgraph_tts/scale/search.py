"""System-2 by search: a hard sub-problem solved by the search graph, run as a subgraph.

Neither SCALE nor DORA does this: SCALE gives a hard sub-problem one thinking sample, DORA
searches whole problems. Here `prepare_search` sets the SCALE state's `subproblem` (the
conditions, the work so far and the sub-problem) and `settings` (`system2_strategy`,
`system2_budget`, System-2's model and sampling), the search graph runs as the
`system2_search` subgraph node (Studio steps into it; interrupts and checkpoints reach it),
and `collect_search` records its winner as the sub-problem's solution.
"""

from __future__ import annotations

from typing import Any

from ..ledger import Ledger
from ..strategies import get_strategy
from .systems import derive_seed, params_b

__all__ = ["search_settings", "search_thinking", "searched"]


def search_thinking(ctx: Any) -> bool | None:
    """`enable_thinking` for a System-2 search.

    Whole-solution strategies think like single System-2 calls. Step-level strategies
    (beam, DVTS, REBASE, DORA) cut the answer at blank lines and continue it, which a
    reasoning parser cannot do inside a thinking block, so thinking is turned off for them.
    """
    if get_strategy(ctx.system2_strategy).kind == "search" and ctx.system2_thinking:
        return False
    thinking: bool | None = ctx.system2_thinking
    return thinking


def search_settings(ctx: Any, problem: str, index: int) -> dict[str, Any]:
    """The search subgraph's per-call settings for sub-problem `index` of `problem`."""
    out: dict[str, Any] = {
        "strategy": ctx.system2_strategy,
        "budget": ctx.system2_budget,
        "temperature": ctx.system2_temperature,
        "top_p": ctx.system2_top_p,
        "top_k": ctx.system2_top_k,
        "thinking": search_thinking(ctx),
        "max_total_tokens": ctx.system2_max_tokens,
        "max_step_tokens": min(ctx.max_step_tokens, ctx.system2_max_tokens),
        "policy_params_b": params_b(ctx, "system2"),
        "seed": derive_seed(ctx, problem, 5, index),
    }
    if ctx.system2_base_url:
        out["base_url"] = ctx.system2_base_url
    if ctx.system2_model:
        out["model"] = ctx.system2_model
    return out


def searched(result: dict[str, Any]) -> tuple[str, str | None, Ledger, str | None]:
    """(winning solution, its finish reason, the search's ledger, its answer)."""
    ledger: Ledger = dict(result.get("ledger") or {})  # type: ignore[assignment]
    return result.get("solution") or "", result.get("finish_reason"), ledger, result.get("answer")
