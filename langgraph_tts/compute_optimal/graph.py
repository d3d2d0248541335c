"""Prebuilt compute-optimal graph (Snell et al. 2024): estimate difficulty, pick θ and n, search.

```
START -> prepare -> estimate -> select_strategy -> (search ->) finish -> END
```
- **estimate** runs the search graph as best-of-N with N = k (`difficulty_samples`):
  one chat request with `n=k`, one batched PRM request; the difficulty score is the mean
  last-step PRM score of the k samples (higher = easier). The k samples are charged to the
  ledger (Snell et al. do not count theirs).
- **select_strategy** bins the score and looks up θ and its budget n: the table's plan for the
  run's budget if it has one (per-bin budgets), else the cell's θ at the run's budget; it
  writes one custom stream event with the bin and the choice.
- **search** runs the search graph with θ at n; best-of-N reuses the k estimation samples and
  draws only n − k (none if n <= k, and the search is skipped).
- **finish** answers: best-of-N votes over the reused and the new samples.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import fmean
from typing import Annotated, Any

from langchain_core.messages import AnyMessage
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages
from langgraph.graph.state import CompiledStateGraph
from langgraph.runtime import Runtime
from typing_extensions import TypedDict

from .._factory import RECURSION_LIMIT, bind_settings, compile_graph
from .._sync import node
from ..clients.types import Embedder, Policy, RewardModel
from ..context import compute_optimal_context_model, search_context_model
from ..errors import ConfigError
from ..grading import Grader, default_grader
from ..ledger import Ledger, merge_ledgers
from ..search.graph import build_search_graph
from ..search.nodes import answer_message, cast_vote, problem_from, vote_groups
from ..settings import overlay
from ..state import SearchInput, SearchOutput, TreeNode
from ..strategies import get_strategy
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
    "difficulty_overrides",
    "measure_difficulty",
    "resolve_table",
]

DIFFICULTY_SEED_OFFSET = 104_729
"""Added to the run's seed for the estimation samples, so that a seeded best-of-N chosen
afterwards does not redraw the same k samples."""


class ComputeOptimalState(TypedDict, total=False):
    """State of one compute-optimal run; the output is the chosen search's, with `result`
    recording the difficulty score, the bin and θ."""

    problem: str
    messages: Annotated[list[AnyMessage], add_messages]
    settings: dict[str, Any]
    """In the input: per-call settings. Between the nodes: what the search subgraph runs."""
    user_settings: dict[str, Any]
    reply: bool
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
    """The k samples' vote (best-of-N at k under the run's vote rule)."""
    voters: list[tuple[str | None, float | None]]
    """(answer, score under the run's aggregation) of each sample, for reuse in best-of-N."""
    result: dict[str, Any]
    ledger: Ledger


def resolve_table(ctx: Any) -> StrategyTable:
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


def difficulty_overrides(ctx: Any) -> dict[str, Any]:
    """Settings of the estimation run: best-of-N with N = k (vote and aggregation as the run's,
    so that its vote is best-of-N at k; the difficulty reads the last-step scores)."""
    return {
        "strategy": "best_of_n",
        "budget": ctx.difficulty_samples,
        "seed": None if ctx.seed is None else ctx.seed + DIFFICULTY_SEED_OFFSET,
        "adaptive": False,  # the table was fitted on exactly k samples
    }


def difficulty_context(ctx: Any) -> Any:
    """`ctx` as the search settings of the estimation run (see `difficulty_overrides`)."""
    search = search_context_model()
    shared = {k: v for k, v in ctx.values().items() if k in search.model_fields}
    return search(**{**shared, **difficulty_overrides(ctx)})


def estimate_from(out: dict[str, Any]) -> DifficultyEstimate:
    """The difficulty estimate from an estimation run's output (nodes, completed, result)."""
    nodes: list[TreeNode] = out.get("nodes") or []
    finished = [nodes[i] for i in out.get("completed") or []]
    scores = [s for s in map(_last_step, finished) if s is not None]
    result = out.get("result") or {}
    return DifficultyEstimate(
        score=fmean(scores) if scores else 0.0,
        scores=scores,
        answers=[n["answer"] for n in finished],
        voters=[(n["answer"], n["score"]) for n in finished],
        answer=out.get("answer"),
        result=result,
        ledger=result.get("ledger") or out.get("ledger") or Ledger(),
    )


def _last_step(node: TreeNode) -> float | None:
    """Snell's difficulty signal: the PRM's score of a solution's last step."""
    steps = node.get("step_scores")
    if steps:
        return float(steps[-1])
    return None if node["score"] is None else float(node["score"])


async def measure_difficulty(
    search: CompiledStateGraph[Any, Any, Any, Any], ctx: Any, problem: str
) -> DifficultyEstimate:
    """Draw k samples with a search graph and average their last-step PRM scores."""
    run: Any = search
    inputs = {"problem": problem, "settings": difficulty_overrides(ctx)}
    out = await run.ainvoke(inputs, context=ctx)
    return estimate_from(out)


def _remaining_caps(ctx: Any, spent: Ledger) -> dict[str, int] | None:
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


class ComputeOptimalNodes:
    """The graph's own nodes; the estimation and θ's search are the search graph as subgraphs.

    Args:
        defaults: The graph's bound settings (an instance of its context schema).
        grader: Answer-equivalence grader of best-of-N's vote over reused samples.

    Examples:
        The settings a node runs on: bound ones, then the run's context, then per-call ones.

        >>> from langgraph_tts.context import ComputeOptimalContext
        >>> nodes = ComputeOptimalNodes(ComputeOptimalContext(budget=16, difficulty_samples=4))
        >>> ctx = nodes.context(None, {"user_settings": {"budget": 32}})
        >>> ctx.budget, ctx.difficulty_samples, ctx.bin_budgets
        (32, 4, True)
    """

    def __init__(self, defaults: Any, grader: Grader | None = None) -> None:
        self.defaults = defaults
        self.grader = grader

    def context(self, runtime: Runtime[Any] | None, state: Any) -> Any:
        """Bound settings, then the run's context, then the input's per-call `settings`."""
        ctx = runtime.context if runtime is not None else None
        return overlay(self.defaults, ctx, state.get("user_settings") or {}, strict=True)

    async def prepare(self, state: ComputeOptimalState, runtime: Runtime[Any]) -> dict[str, Any]:
        """Check the problem and the table before spending anything; set up the estimation."""
        user = dict(state.get("settings") or {})
        ctx = self.context(runtime, {"user_settings": user})
        problem, reply = problem_from(state)
        if not problem:
            raise ConfigError("no problem to solve: pass {'problem': '...'} or chat messages")
        resolve_table(ctx).budget_for(ctx.budget)
        return {
            "problem": problem,
            "reply": reply,
            "user_settings": user,
            "settings": {**_for_search(user), **difficulty_overrides(ctx)},
            "started_at": time.time(),
        }

    async def select_strategy(
        self, state: ComputeOptimalState, runtime: Runtime[Any]
    ) -> dict[str, Any]:
        """Bin the difficulty score, look θ and its budget up; stream the choice."""
        ctx = self.context(runtime, state)
        estimate = estimate_from(dict(state))
        table = resolve_table(ctx)
        selection = _selection(table, ctx, estimate.score)
        runtime.stream_writer({"event": "compute_optimal", "budget": ctx.budget, **selection})
        overrides: dict[str, Any] = {
            "strategy": selection["chosen_strategy"],
            "budget": selection["run_budget"] - selection["reused"],
        }
        if selection["beam_width"] is not None:
            overrides["beam_width"] = selection["beam_width"]
        room = _remaining_caps(ctx, state.get("ledger") or {})
        return {
            "difficulty": estimate.score,
            "estimate": {
                "answer": estimate.answer,
                "result": estimate.result,
                "scores": [round(x, 6) for x in estimate.scores],
                "voters": estimate.voters,
                "exhausted": room is None,
            },
            "selection": selection,
            "settings": {
                **_for_search(state.get("user_settings") or {}),
                **overrides,
                **(room or {}),
            },
        }

    async def finish(self, state: ComputeOptimalState, runtime: Runtime[Any]) -> dict[str, Any]:
        """θ's answer, or best-of-N's vote over the reused and new samples, with the selection.

        If the estimation used up a hard cap, its own vote is the answer (`hard_cap`).
        """
        ctx = self.context(runtime, state)
        estimate, selection = state["estimate"], state["selection"]
        searched = not estimate["exhausted"] and _searches(selection)
        out: dict[str, Any] = {
            "answer": state.get("answer") if searched else estimate["answer"],
            "result": dict((state.get("result") if searched else estimate["result"]) or {}),
        }
        if estimate["exhausted"]:
            out["result"]["stop_reason"] = "hard_cap"
        elif selection["reused"] and searched:
            out["answer"], merged = await self._reuse_vote(ctx, state)
            out["result"].update(merged)
        out["result"] = {
            **out["result"],
            **selection,
            "strategy": "compute_optimal",
            "budget": ctx.budget,
        }
        out["result"]["ledger"] = dict(state.get("ledger") or {})
        if state.get("reply"):
            out["messages"] = [answer_message(out["answer"], out["result"])]
        return out

    async def _reuse_vote(
        self, ctx: Any, state: ComputeOptimalState
    ) -> tuple[str | None, dict[str, Any]]:
        """Best-of-N's vote over the k estimation samples and the search's new ones."""
        nodes, completed = state.get("nodes") or [], state.get("completed") or []
        reused = [tuple(v) for v in state["estimate"]["voters"]]
        voters = [*reused, *((nodes[i]["answer"], nodes[i]["score"]) for i in completed)]
        result = await cast_vote(
            [answer for answer, _ in voters],
            [score for _, score in voters],
            get_strategy("best_of_n").vote_rule(ctx),
            self.grader or default_grader(),
        )
        winner = result.winner
        return result.answer, {
            "answer": result.answer,
            "voters": len(voters),
            "vote": result.rule,
            # the winner's index in `completed`, or None if it is one of the reused samples
            "winner": None
            if winner is None or winner < len(reused)
            else completed[winner - len(reused)],
            "groups": vote_groups(result),
        }


def _selection(table: StrategyTable, ctx: Any, score: float) -> dict[str, Any]:
    """θ and its budget for a difficulty score: the plan of the run's budget if the table has
    one (and `bin_budgets` is on), else the cell's θ at the run's budget."""
    k = ctx.difficulty_samples
    picked = table.select(score, ctx.budget)
    plan = table.plan_for(ctx.budget) if ctx.bin_budgets else None
    choice, budget = picked.cell.choice, ctx.budget
    if plan is not None:
        entry = plan.entry(picked.bin)
        choice, budget = entry.choice, entry.budget
    reused = min(k, budget) if choice.strategy == "best_of_n" else 0
    return {
        "bin": picked.bin,
        "bins": table.bins,
        "difficulty": round(score, 6),
        "difficulty_samples": k,
        "chosen": choice.name,
        "chosen_strategy": choice.strategy,
        "beam_width": choice.width_for(budget),
        "table_budget": picked.budget if plan is None else plan.target,
        "plan": plan is not None,
        "run_budget": max(budget, reused),
        "reused": reused,
        "cv_accuracy": picked.cell.cv_accuracy if plan is None else plan.cv_accuracy,
    }


def _searches(selection: dict[str, Any]) -> bool:
    """Whether θ draws anything beyond the reused estimation samples."""
    return int(selection["run_budget"]) > int(selection["reused"])


def _for_search(user: dict[str, Any]) -> dict[str, Any]:
    """The per-call settings that the search subgraph knows (not the table's own)."""
    known = search_context_model().model_fields
    return {k: v for k, v in user.items() if k in known}


def _after_select(state: ComputeOptimalState) -> str:
    if state["estimate"]["exhausted"] or not _searches(state["selection"]):
        return "finish"
    return "search"


def build_compute_optimal_graph(
    strategy: str | None = "compute_optimal",
    *,
    policy: Policy | None = None,
    prm: RewardModel | None = None,
    embedder: Embedder | None = None,
    grader: Grader | None = None,
    **settings: Any,
) -> StateGraph[Any, Any, Any, Any]:
    """Build (not compile) the compute-optimal graph.

    ```
    START -> prepare -> estimate -> select_strategy -> (search ->) finish -> END
    ```
    `estimate` and `search` are the search graph as subgraphs: best-of-N with N = k for the
    difficulty estimate, then θ at the run's budget.

    Args:
        strategy: Always `compute_optimal` (the argument keeps every factory's shape).
        policy: Policy client; default: `ChatPolicy` on the settings' `base_url`.
        prm: Reward model; default: `PoolingPRM` on `prm_url`, else a generative verifier.
        embedder: Embedder, used if the table picks DORA.
        grader: Answer-equivalence grader used by the votes.
        **settings: Any field of the context schema (`table`, `difficulty_samples`, `budget`).

    Returns:
        A `StateGraph` with the compute-optimal context schema.

    Examples:
        >>> from langgraph_tts.compute_optimal import Cell, Choice, StrategyTable
        >>> from langgraph_tts.sim.inprocess import sim_clients
        >>> cell = Cell(
        ...     bin=1, budget=4, choice=Choice(strategy="best_of_n"),
        ...     problems=1, accuracy=1.0, cv_accuracy=1.0,
        ... )
        >>> table = StrategyTable(difficulty_samples=4, thresholds=[], cells=[cell])
        >>> builder = build_compute_optimal_graph(table=table, budget=4, **sim_clients(seed=2))
        >>> sorted(builder.nodes)
        ['estimate', 'finish', 'prepare', 'search', 'select_strategy']
        >>> graph = builder.compile(interrupt_before=["finish"])
    """
    model = compute_optimal_context_model()
    bound = bind_settings(model, strategy, settings)
    shared = {k: v for k, v in bound.values().items() if k in search_context_model().model_fields}
    shared.pop("strategy")
    search = build_search_graph(
        "best_of_n", policy=policy, prm=prm, embedder=embedder, grader=grader, **shared
    ).compile(name="search")
    nodes = ComputeOptimalNodes(bound, grader)
    builder = StateGraph(
        ComputeOptimalState,
        context_schema=model,
        input_schema=SearchInput,
        output_schema=SearchOutput,
    )
    builder.add_node("prepare", node(nodes.prepare, "prepare"))
    builder.add_node("estimate", search)
    builder.add_node("select_strategy", node(nodes.select_strategy, "select_strategy"))
    builder.add_node("search", search)
    builder.add_node("finish", node(nodes.finish, "finish"))
    builder.add_edge(START, "prepare")
    builder.add_edge("prepare", "estimate")
    builder.add_edge("estimate", "select_strategy")
    builder.add_conditional_edges("select_strategy", _after_select, ["search", "finish"])
    builder.add_edge("search", "finish")
    builder.add_edge("finish", END)
    return builder


def create_compute_optimal_graph(
    strategy: str | None = "compute_optimal",
    *,
    policy: Policy | None = None,
    prm: RewardModel | None = None,
    embedder: Embedder | None = None,
    grader: Grader | None = None,
    checkpointer: Any = None,
    store: Any = None,
    interrupt_before: Sequence[str] | None = None,
    interrupt_after: Sequence[str] | None = None,
    name: str = "compute_optimal",
    debug: bool = False,
    **settings: Any,
) -> CompiledStateGraph[Any, Any, Any, Any]:
    """Compile the compute-optimal graph (see `build_compute_optimal_graph`).

    With a table from `langgraph-tts calibrate` (`table="table.json"`) and clients from the
    `LANGGRAPH_TTS_*` settings; here a two-bin table and the in-process simulator:

    Examples:
        >>> from langgraph_tts.compute_optimal import Cell, Choice, StrategyTable
        >>> from langgraph_tts.sim.inprocess import sim_clients
        >>> easy, hard = Choice(strategy="best_of_n"), Choice(strategy="dvts", beam_width=4)
        >>> cells = [
        ...     Cell(bin=b, budget=16, choice=c, problems=20, accuracy=0.9, cv_accuracy=0.85)
        ...     for b, c in ((1, easy), (2, hard))
        ... ]
        >>> table = StrategyTable(difficulty_samples=8, thresholds=[0.6], cells=cells)
        >>> graph = create_compute_optimal_graph(
        ...     table=table, budget=16, seed=0, **sim_clients(seed=2)
        ... )
        >>> out = graph.invoke({"problem": "What is 7 times 6?"})
        >>> r = out["result"]
        >>> out["answer"], r["bin"], r["chosen"], r["difficulty"]
        ('720', 1, 'best_of_n', 0.618643)

        Best-of-N at 16 reused the k = 8 estimation samples and drew 8 more:

        >>> r["reused"], r["voters"], out["ledger"]["samples"]
        (8, 16, 16)
    """
    builder = build_compute_optimal_graph(
        strategy, policy=policy, prm=prm, embedder=embedder, grader=grader, **settings
    )
    return compile_graph(
        builder,
        checkpointer=checkpointer,
        store=store,
        interrupt_before=interrupt_before,
        interrupt_after=interrupt_after,
        name=name,
        debug=debug,
    )
