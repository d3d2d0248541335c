"""System-2 by search: solve one hard sub-problem with the search graph.

Neither SCALE nor DORA does this: SCALE gives a hard sub-problem one thinking sample, DORA
searches whole problems. Here a sub-problem routed to System-2 is handed, as its own problem
(conditions, work so far and the sub-problem), to `create_search_graph` with
`system2_strategy` and `system2_budget`, and the search's ledger becomes the sub-problem's.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from langgraph.graph.state import CompiledStateGraph

from ..clients.types import Embedder, Policy, RewardModel
from ..context import ScaleContext
from ..ledger import Ledger
from ..resources import resolve_clients
from ..state import path_text
from .systems import ThinkingPolicy, search_context, search_thinking

__all__ = ["SearchOutcome", "SearchSolver"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SearchOutcome:
    """The winning solution of a sub-problem search, with the search's spend and report."""

    answer: str | None
    solution: str
    finish_reason: str | None
    ledger: Ledger
    result: dict[str, Any]


class SearchSolver:
    """Runs the search graph on sub-problems; compiled graphs and wrappers are built once.

    Args:
        prm: Reward model given to the SCALE graph (default: resolved from the context).
        embedder: Embedder given to the SCALE graph (default: resolved for DORA).
        grader: Answer-equivalence grader for the search's vote.
    """

    def __init__(
        self,
        *,
        prm: RewardModel | None = None,
        embedder: Embedder | None = None,
        grader: Any = None,
    ) -> None:
        self.prm = prm
        self.embedder = embedder
        self.grader = grader
        self._wrapped: dict[tuple[int, bool], tuple[Policy, Policy]] = {}
        self._graphs: dict[tuple[int, int, int], tuple[CompiledStateGraph, tuple[Any, ...]]] = {}

    def _with_thinking(self, policy: Policy, thinking: bool | None) -> Policy:
        """`policy` sending `enable_thinking=thinking` (itself when thinking is None)."""
        if thinking is None:
            return policy
        key = (id(policy), thinking)
        if key not in self._wrapped:
            self._wrapped[key] = (policy, ThinkingPolicy(policy, thinking))
        return self._wrapped[key][1]

    def _graph(
        self, policy: Policy, reward: RewardModel, embedder: Embedder | None
    ) -> CompiledStateGraph:
        from ..search.graph import create_search_graph

        key = (id(policy), id(reward), id(embedder))
        if key not in self._graphs:
            graph = create_search_graph(
                None,
                policy,
                reward,
                embedder,
                checkpointer=False,
                name="scale_system2_search",
                grader=self.grader,
            )
            self._graphs[key] = (graph, (policy, reward, embedder))
        return self._graphs[key][0]

    async def solve(self, ctx: ScaleContext, policy: Policy, problem: str) -> SearchOutcome:
        """Search `problem` (the sub-problem prompt) with System-2's strategy and budget.

        The generative verifier, used when no PRM is configured, judges with thinking off:
        it reads one token, which a thinking model would spend on opening its thinking block.
        """
        sctx = search_context(ctx)
        judge = self._with_thinking(policy, False if ctx.system2_thinking is not None else None)
        clients = resolve_clients(
            sctx,
            policy=judge,
            reward=self.prm,
            embedder=self.embedder,
            need_embedder=sctx.strategy == "dora",
        )
        expander = self._with_thinking(policy, search_thinking(ctx))
        graph = self._graph(expander, clients.reward, clients.embedder)
        run: Any = graph  # the context overloads of `ainvoke` are typed for context_schema=None
        out = await run.ainvoke({"problem": problem}, context=sctx)
        result: dict[str, Any] = out.get("result") or {}
        nodes = out.get("nodes") or []
        winner = result.get("winner")
        solution, finish = "", None
        if winner is not None and winner < len(nodes):
            solution = path_text(nodes, winner)
            finish = nodes[winner].get("finish")
        logger.debug("system-2 %s search: answer %r", sctx.strategy, out.get("answer"))
        return SearchOutcome(
            answer=out.get("answer"),
            solution=solution,
            finish_reason=finish,
            ledger=dict(out.get("ledger") or {}),  # type: ignore[arg-type]
            result=result,
        )
