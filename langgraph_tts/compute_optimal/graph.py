"""Prebuilt compute-optimal graph (Snell et al. 2024): estimate difficulty, pick θ, search.

```
START -> estimate_difficulty -> select_strategy -> search -> END
```
- **estimate_difficulty** runs the search graph as best-of-N with N = k (`difficulty_samples`):
  one chat request with `n=k`, one batched PRM request; the difficulty score is the mean
  last-step PRM score of the k samples (higher = easier). The k samples are charged to the
  ledger (Snell et al. do not count theirs).
- **select_strategy** bins the score with the table's thresholds and looks up θ for the run's
  budget; it writes one custom stream event with the bin and the choice.
- **search** runs the search graph with θ's strategy and beam width at the run's budget.

The estimation samples are not reused in the chosen strategy's vote (see
docs/compute_optimal.md).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from statistics import fmean
from typing import Annotated, Any, TypedDict

from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.runtime import Runtime

from ..clients.types import Embedder, Policy, RewardModel
from ..context import SearchContext
from ..errors import ConfigError
from ..grading import Grader
from ..ledger import Ledger, merge_ledgers
from ..search.graph import create_search_graph
from ..state import SearchInput, SearchOutput, TreeNode
from .table import StrategyTable
from .tablefile import load_table

__all__ = [
    "DIFFICULTY_SEED_OFFSET",
    "RECURSION_LIMIT",
    "ComputeOptimalNodes",
    "ComputeOptimalState",
    "DifficultyEstimate",
    "build_compute_optimal_graph",
    "create_compute_optimal_graph",
    "difficulty_context",
    "measure_difficulty",
    "resolve_table",
]

RECURSION_LIMIT = 10_000
DIFFICULTY_SEED_OFFSET = 104_729
"""Added to the run's seed for the estimation samples, so that a seeded best-of-N chosen
afterwards does not redraw the same k samples."""


class ComputeOptimalState(TypedDict, total=False):
    """State of one compute-optimal run; the output is the chosen search's, with `result`
    recording the difficulty score, the bin and θ."""

    problem: str
    difficulty: float
    """Mean last-step PRM score of the k estimation samples (higher = easier)."""
    estimate: dict[str, Any]
    """The estimation run's answer and report (the answer if the caps leave no room to search)."""
    selection: dict[str, Any]
    """Bin, fitted budget and θ picked by `select_strategy`."""
    started_at: float
    answer: str | None
    result: dict[str, Any]
    ledger: Annotated[Ledger, merge_ledgers]
    nodes: list[TreeNode]
    completed: list[int]


@dataclass(frozen=True)
class DifficultyEstimate:
    """Snell's model-predicted difficulty of one problem, from k PRM-scored samples."""

    score: float
    """Mean last-step PRM score of the scored samples; 0.0 (hardest) if none could be scored."""
    scores: list[float]
    answers: list[str | None]
    """Extracted answers of the k samples (for oracle difficulty: their pass rate)."""
    answer: str | None
    """PRM-weighted vote of the k samples."""
    result: dict[str, Any]
    ledger: Ledger


def resolve_table(ctx: SearchContext) -> StrategyTable:
    """The run's strategy table, checked against the run's settings.

    Raises:
        ConfigError: no table, an unreadable or invalid file, an oracle-difficulty table (it
            routes on pass rates, which need the answer), or `difficulty_samples` differing
            from the k the table's bins were fitted on.
    """
    if ctx.table is None:
        msg = (
            "strategy compute_optimal needs a strategy table: set `table` (--table FILE); "
            "`langgraph-tts calibrate` writes one"
        )
        raise ConfigError(msg)
    table = ctx.table if isinstance(ctx.table, StrategyTable) else load_table(ctx.table)
    if table.difficulty == "oracle":
        msg = (
            "the strategy table was fitted on oracle difficulty (pass rates need the answer); "
            "refit it with --difficulty predicted to route problems"
        )
        raise ConfigError(msg)
    if table.difficulty_samples != ctx.difficulty_samples:
        msg = (
            f"difficulty_samples is {ctx.difficulty_samples} but the table's bins were fitted on "
            f"k={table.difficulty_samples} samples; set difficulty_samples={table.difficulty_samples}"
        )
        raise ConfigError(msg)
    return table


def difficulty_context(ctx: SearchContext) -> SearchContext:
    """Settings of the estimation run: best-of-N with N = k, last-step PRM scores."""
    return replace(
        ctx,
        strategy="best_of_n",
        budget=ctx.difficulty_samples,
        aggregation="last",
        vote="weighted",
        seed=None if ctx.seed is None else ctx.seed + DIFFICULTY_SEED_OFFSET,
    )


async def measure_difficulty(
    search: CompiledStateGraph[Any, Any, Any, Any], ctx: SearchContext, problem: str
) -> DifficultyEstimate:
    """Draw k samples with the search graph and average their last-step PRM scores."""
    run: Any = search  # `ainvoke`'s context overloads are typed for context_schema=None
    out = await run.ainvoke({"problem": problem}, context=difficulty_context(ctx))
    nodes: list[TreeNode] = out.get("nodes") or []
    finished = [nodes[i] for i in out.get("completed") or []]
    scores = [float(n["score"]) for n in finished if n["score"] is not None]
    return DifficultyEstimate(
        score=fmean(scores) if scores else 0.0,
        scores=scores,
        answers=[n["answer"] for n in finished],
        answer=out.get("answer"),
        result=out.get("result") or {},
        ledger=out.get("ledger") or Ledger(),
    )


class ComputeOptimalNodes:
    """The graph's nodes, bound to optional clients and default settings.

    Both the estimation and the chosen strategy run one compiled search graph, built once with
    the clients given here (or resolved from each run's context).
    """

    def __init__(
        self,
        *,
        policy: Policy | None = None,
        reward: RewardModel | None = None,
        embedder: Embedder | None = None,
        grader: Grader | None = None,
        defaults: SearchContext | None = None,
    ) -> None:
        self.defaults = defaults or SearchContext(strategy="compute_optimal")
        self.search_graph = create_search_graph(
            None,
            policy,
            reward,
            embedder,
            checkpointer=False,
            name="compute_optimal_search",
            grader=grader,
        )

    def context(self, runtime: Runtime[SearchContext] | None) -> SearchContext:
        """The run's context, or the graph's defaults when the caller passed none."""
        ctx = runtime.context if runtime is not None else None
        return ctx if ctx is not None else self.defaults

    async def estimate_difficulty(
        self, state: ComputeOptimalState, runtime: Runtime[SearchContext]
    ) -> dict[str, Any]:
        """k samples in one request, one PRM request: the problem's difficulty score."""
        ctx = self.context(runtime)
        problem = (state.get("problem") or "").strip()
        if not problem:
            raise ConfigError("problem must be a non-empty string")
        resolve_table(ctx).budget_for(ctx.budget)  # fail before spending anything
        started = time.time()
        estimate = await measure_difficulty(self.search_graph, ctx, problem)
        return {
            "problem": problem,
            "difficulty": estimate.score,
            "estimate": {
                "answer": estimate.answer,
                "result": estimate.result,
                "scores": [round(s, 6) for s in estimate.scores],
            },
            "started_at": started,
            "ledger": estimate.ledger,
        }

    async def select_strategy(
        self, state: ComputeOptimalState, runtime: Runtime[SearchContext]
    ) -> dict[str, Any]:
        """Bin the difficulty score and look θ up for the run's budget; stream the choice."""
        ctx = self.context(runtime)
        table = resolve_table(ctx)
        picked = table.select(state["difficulty"], ctx.budget)
        choice = picked.cell.choice
        selection = {
            "bin": picked.bin,
            "bins": table.bins,
            "difficulty": round(state["difficulty"], 6),
            "difficulty_samples": ctx.difficulty_samples,
            "chosen": choice.name,
            "chosen_strategy": choice.strategy,
            "beam_width": choice.width_for(ctx.budget),
            "table_budget": picked.budget,
            "cv_accuracy": picked.cell.cv_accuracy,
        }
        runtime.stream_writer({"event": "compute_optimal", "budget": ctx.budget, **selection})
        return {"selection": selection}

    async def search(
        self, state: ComputeOptimalState, runtime: Runtime[SearchContext]
    ) -> dict[str, Any]:
        """Run θ's search at the run's budget, within what the estimation left of the caps."""
        ctx = self.context(runtime)
        selection = state["selection"]
        room = _remaining_caps(ctx, state.get("ledger") or {})
        out: dict[str, Any]
        if room is None:  # the estimation used up a hard cap: its own vote is the answer
            estimate = state["estimate"]
            result = {**estimate["result"], "stop_reason": "hard_cap"}
            out = {"answer": estimate["answer"], "result": result, "nodes": [], "completed": []}
            ledger: Ledger = {}
        else:
            overrides: dict[str, Any] = {"strategy": selection["chosen_strategy"], **room}
            if selection["beam_width"] is not None:
                overrides["beam_width"] = selection["beam_width"]
            run: Any = self.search_graph
            found = await run.ainvoke(
                {"problem": state["problem"]}, context=replace(ctx, **overrides)
            )
            out = {k: found.get(k) for k in ("answer", "nodes", "completed")}
            result = found.get("result") or {}
            ledger = found.get("ledger") or Ledger()
        wall = Ledger(wall_s=time.time() - state.get("started_at", time.time()))
        return {
            **out,
            "result": {**result, **selection, "strategy": "compute_optimal"},
            "ledger": merge_ledgers(ledger, wall),
        }


def _remaining_caps(ctx: SearchContext, spent: Ledger) -> dict[str, int] | None:
    """The hard caps left for the search, or None if the estimation exhausted one."""
    room: dict[str, int] = {}
    for cap, key in (("max_samples", "samples"), ("max_tokens_cap", "completion_tokens")):
        limit = getattr(ctx, cap)
        if limit is not None:
            left = int(limit) - int(spent.get(key, 0))  # type: ignore[call-overload]
            if left <= 0:
                return None
            room[cap] = left
    return room


def build_compute_optimal_graph(
    *,
    policy: Policy | None = None,
    prm: RewardModel | None = None,
    embedder: Embedder | None = None,
    grader: Grader | None = None,
    **settings: Any,
) -> StateGraph[Any, Any, Any, Any]:
    """Build (not compile) the compute-optimal graph.

    Args:
        policy: Policy client; default: `ChatPolicy` on the context's `base_url`.
        prm: Reward model; default: `PoolingPRM` on `prm_url`, else the policy as a
            generative verifier.
        embedder: Embedder, used if the table picks DORA.
        grader: Answer-equivalence grader used by the votes.
        **settings: Any `SearchContext` field (`table`, `difficulty_samples`, `budget`, ...), as
            defaults for runs without a context; `strategy` is always `compute_optimal`.

    Returns:
        A `StateGraph` with `context_schema=SearchContext`.
    """
    nodes = ComputeOptimalNodes(
        policy=policy,
        reward=prm,
        embedder=embedder,
        grader=grader,
        defaults=SearchContext(**{**settings, "strategy": "compute_optimal"}),
    )
    builder = StateGraph(
        ComputeOptimalState,
        context_schema=SearchContext,
        input_schema=SearchInput,
        output_schema=SearchOutput,
    )
    builder.add_node("estimate_difficulty", nodes.estimate_difficulty)
    builder.add_node("select_strategy", nodes.select_strategy)
    builder.add_node("search", nodes.search)
    builder.add_edge(START, "estimate_difficulty")
    builder.add_edge("estimate_difficulty", "select_strategy")
    builder.add_edge("select_strategy", "search")
    builder.add_edge("search", END)
    return builder


def create_compute_optimal_graph(
    policy: Policy | None = None,
    prm: RewardModel | None = None,
    embedder: Embedder | None = None,
    *,
    checkpointer: Any = None,
    store: Any = None,
    name: str = "compute_optimal",
    grader: Grader | None = None,
    **settings: Any,
) -> CompiledStateGraph[Any, Any, Any, Any]:
    """Compile the compute-optimal graph.

    Example:
        ```python
        from langgraph_tts import create_compute_optimal_graph

        graph = create_compute_optimal_graph(table="table.json", budget=16)
        out = await graph.ainvoke({"problem": "What is 2+3?"})
        out["answer"], out["result"]["bin"], out["result"]["chosen"], out["ledger"]["samples"]
        ```

    A run may pass `context=SearchContext(strategy="compute_optimal", table=..., ...)`; it then
    replaces the defaults given here (the clients bound here are kept).
    """
    builder = build_compute_optimal_graph(
        policy=policy, prm=prm, embedder=embedder, grader=grader, **settings
    )
    graph = builder.compile(checkpointer=checkpointer, store=store, name=name)
    return graph.with_config(recursion_limit=RECURSION_LIMIT)
