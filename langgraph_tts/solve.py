"""The prebuilt "solve math" graph: one entry point for every strategy.

`create_solve_graph()` dispatches on the run's `strategy` (from its `ScaleContext`) to the
search graph (cot, self_consistency, best_of_n, beam, dvts, rebase, dora), the SCALE graph or
the compute-optimal graph (Snell et al.: a strategy per difficulty bin from a fitted table).
It is what `langgraph.json` exposes as `solve_math`, and `asolve` is what the command line
and the evaluation runner call.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, TypedDict

from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.runtime import Runtime

from .clients.types import Embedder, Policy, RewardModel
from .context import SEARCH_STRATEGIES, ScaleContext, SearchContext
from .errors import ConfigError
from .grading import Grader
from .ledger import Ledger, merge_ledgers

__all__ = ["SolveState", "Solver", "asolve", "build_solve_graph", "create_solve_graph"]

RECURSION_LIMIT = 10_000


class SolveState(TypedDict, total=False):
    """Input `problem`; output `answer`, `result` (strategy details), `ledger`, `nodes`."""

    problem: str
    answer: str | None
    result: dict[str, Any]
    ledger: Annotated[Ledger, merge_ledgers]
    nodes: list[dict[str, Any]]


class Solver:
    """Solves problems with the strategy of a context; compiled graphs are built once."""

    def __init__(
        self,
        context: SearchContext | None = None,
        *,
        policy: Policy | None = None,
        prm: RewardModel | None = None,
        embedder: Embedder | None = None,
        grader: Grader | None = None,
    ) -> None:
        self.context = context or ScaleContext()
        self.policy, self.prm, self.embedder, self.grader = policy, prm, embedder, grader
        self._graphs: dict[str, CompiledStateGraph[Any, Any, Any, Any]] = {}

    def graph_for(self, strategy: str) -> CompiledStateGraph[Any, Any, Any, Any]:
        """The compiled graph that runs `strategy` (built on first use)."""
        kind = strategy if strategy in ("scale", "compute_optimal") else "search"
        if strategy not in SEARCH_STRATEGIES and kind == "search":
            raise ConfigError(f"unknown strategy {strategy!r}")
        if kind not in self._graphs:
            if kind == "compute_optimal":
                from .compute_optimal.graph import create_compute_optimal_graph

                self._graphs[kind] = create_compute_optimal_graph(
                    self.policy, self.prm, self.embedder, grader=self.grader
                )
            elif kind == "scale":
                from .scale.graph import create_scale_graph

                self._graphs[kind] = create_scale_graph(
                    self.policy, prm=self.prm, embedder=self.embedder, grader=self.grader
                )
            else:
                from .search.graph import create_search_graph

                self._graphs[kind] = create_search_graph(
                    None, self.policy, self.prm, self.embedder, grader=self.grader
                )
        return self._graphs[kind]

    async def __call__(
        self,
        problem: str,
        *,
        context: SearchContext | None = None,
        on_event: Callable[[dict[str, Any]], None] | None = None,
    ) -> dict[str, Any]:
        """Solve one problem; `on_event` receives the graph's custom stream events."""
        ctx = context or self.context
        graph = self.graph_for(ctx.strategy)
        inputs = {"problem": problem}
        if on_event is None:
            out: dict[str, Any] = await graph.ainvoke(inputs, context=ctx)
            return out
        final: dict[str, Any] = {}
        stream: Any = graph.astream(inputs, context=ctx, stream_mode=["custom", "values"])
        async for mode, chunk in stream:
            if mode == "custom":
                on_event(chunk)
            else:
                final = chunk
        return {
            k: final.get(k) for k in ("problem", "answer", "result", "ledger", "nodes", "completed")
        }


async def asolve(
    problem: str,
    context: SearchContext | None = None,
    *,
    policy: Policy | None = None,
    prm: RewardModel | None = None,
    embedder: Embedder | None = None,
    on_event: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Solve one problem with the context's strategy (see `Solver` to solve many)."""
    solver = Solver(context, policy=policy, prm=prm, embedder=embedder)
    return await solver(problem, on_event=on_event)


class _SolveNode:
    def __init__(self, solver: Solver) -> None:
        self.solver = solver

    async def __call__(self, state: SolveState, runtime: Runtime[ScaleContext]) -> dict[str, Any]:
        ctx = runtime.context or self.solver.context
        out = await self.solver(state.get("problem", ""), context=ctx)
        return {
            "answer": out.get("answer"),
            "result": out.get("result") or {},
            "ledger": out.get("ledger") or {},
            "nodes": out.get("nodes") or [],
        }


def build_solve_graph(
    *,
    policy: Policy | None = None,
    prm: RewardModel | None = None,
    embedder: Embedder | None = None,
    grader: Grader | None = None,
    **settings: Any,
) -> StateGraph[Any, Any, Any, Any]:
    """Build the dispatching graph; `settings` are `ScaleContext` defaults for runs without one."""
    solver = Solver(
        ScaleContext(**settings), policy=policy, prm=prm, embedder=embedder, grader=grader
    )
    builder = StateGraph(SolveState, context_schema=ScaleContext)
    builder.add_node("solve", _SolveNode(solver))
    builder.add_edge(START, "solve")
    builder.add_edge("solve", END)
    return builder


def create_solve_graph(
    *,
    policy: Policy | None = None,
    prm: RewardModel | None = None,
    embedder: Embedder | None = None,
    grader: Grader | None = None,
    checkpointer: Any = None,
    name: str = "solve_math",
    **settings: Any,
) -> CompiledStateGraph[Any, Any, Any, Any]:
    """Compile the "solve math" graph (strategy, budget and endpoints come from the context)."""
    builder = build_solve_graph(
        policy=policy, prm=prm, embedder=embedder, grader=grader, **settings
    )
    graph = builder.compile(checkpointer=checkpointer, name=name)
    return graph.with_config(recursion_limit=RECURSION_LIMIT)
