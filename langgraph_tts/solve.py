"""The prebuilt "solve math" graph: every registered strategy behind one graph.

```
START -> prepare -(strategy)-> search | scale | compute_optimal -> respond -> END
```
`search`, `scale` and `compute_optimal` are the three prebuilt graphs as subgraphs, so
`get_graph(xray=True)` and Studio show their nodes, interrupts and checkpoints reach inside,
and their custom stream events surface with `stream(..., subgraphs=True)`. It is what
`langgraph.json` exposes as `solve_math`; `Solver` and `asolve` are what the command line and
the evaluation runner call.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Annotated, Any

from langchain_core.messages import AnyMessage
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages
from langgraph.graph.state import CompiledStateGraph
from langgraph.runtime import Runtime
from typing_extensions import TypedDict

from ._factory import RECURSION_LIMIT, bind_settings, compile_graph
from ._sync import node
from .clients.types import Embedder, Policy, RewardModel
from .compute_optimal.graph import build_compute_optimal_graph
from .context import (
    compute_optimal_context_model,
    scale_context_model,
    search_context_model,
    solve_context_model,
)
from .errors import ConfigError, check_problem
from .grading import Grader
from .ledger import Ledger, merge_ledgers
from .scale.graph import build_scale_graph
from .search.graph import build_search_graph
from .search.nodes import answer_message, problem_from
from .settings import overlay
from .state import SearchInput, SearchOutput, TreeNode
from .strategies import get_strategy

__all__ = [
    "RECURSION_LIMIT",
    "SolveState",
    "Solver",
    "asolve",
    "build_solve_graph",
    "create_solve_graph",
]

_SUBGRAPHS: dict[
    str, tuple[Callable[[], type[Any]], Callable[..., StateGraph[Any, Any, Any, Any]]]
] = {
    "search": (search_context_model, build_search_graph),
    "scale": (scale_context_model, build_scale_graph),
    "compute_optimal": (compute_optimal_context_model, build_compute_optimal_graph),
}
"""Subgraph node -> (its context schema, its builder)."""


class SolveState(TypedDict, total=False):
    """Input `problem` (or `messages`); output `answer`, `result`, `ledger`, `nodes`."""

    problem: str
    messages: Annotated[list[AnyMessage], add_messages]
    settings: dict[str, Any]
    reply: bool
    target: str
    answer: str | None
    result: dict[str, Any]
    ledger: Annotated[Ledger, merge_ledgers]
    nodes: list[TreeNode]
    completed: list[int]


def _target(strategy: str) -> str:
    """The subgraph that runs `strategy`."""
    spec = get_strategy(strategy)
    return spec.name if spec.kind == "graph" else "search"


class _SolveNodes:
    def __init__(self, defaults: Any) -> None:
        self.defaults = defaults

    async def prepare(self, state: SolveState, runtime: Runtime[Any]) -> dict[str, Any]:
        """Resolve the problem and the strategy; pass the per-call settings the subgraph knows."""
        user = dict(state.get("settings") or {})
        ctx = overlay(self.defaults, runtime.context, user, strict=True)
        problem, reply = problem_from(state)
        if not problem:
            raise ConfigError("no problem to solve: pass {'problem': '...'} or chat messages")
        check_problem(problem)  # at most MAX_PROBLEM_CHARS
        target = _target(ctx.strategy)
        known = _SUBGRAPHS[target][0]().model_fields
        passed = {k: v for k, v in user.items() if k in known}
        passed["strategy"] = ctx.strategy
        return {"problem": problem, "reply": reply, "target": target, "settings": passed}

    async def respond(self, state: SolveState, runtime: Runtime[Any]) -> dict[str, Any]:
        """Append the answer to the chat when the problem came from it."""
        if not state.get("reply"):
            return {}
        return {"messages": [answer_message(state.get("answer"), state.get("result") or {})]}


def build_solve_graph(
    strategy: str | None = "dora",
    *,
    policy: Policy | None = None,
    prm: RewardModel | None = None,
    embedder: Embedder | None = None,
    grader: Grader | None = None,
    **settings: Any,
) -> StateGraph[Any, Any, Any, Any]:
    """Build the solve-math graph: a router and the three prebuilt graphs as subgraphs.

    Args:
        strategy: The strategy runs use unless their context or input sets another.
        policy, prm, embedder, grader: Bound clients (default: from the settings' URLs).
        **settings: Any field of the solve context schema (every strategy's settings).

    Examples:
        The three prebuilt graphs are nodes of this one; compile it yourself, e.g. with a
        checkpointer:

        >>> from langgraph.checkpoint.memory import InMemorySaver
        >>> from langgraph_tts.sim.inprocess import sim_clients
        >>> builder = build_solve_graph("best_of_n", **sim_clients(seed=2), budget=4, seed=0)
        >>> sorted(builder.nodes)
        ['compute_optimal', 'prepare', 'respond', 'scale', 'search']
        >>> graph = builder.compile(checkpointer=InMemorySaver())
        >>> thread = {"configurable": {"thread_id": "1"}}
        >>> graph.invoke({"problem": "What is 7 times 6?"}, thread)["answer"]
        '720'
        >>> graph.get_state(thread).values["result"]["strategy"]
        'best_of_n'
    """
    bound = bind_settings(solve_context_model(), strategy, settings)
    values = bound.values()
    clients: dict[str, Any] = {"policy": policy, "prm": prm, "embedder": embedder, "grader": grader}
    nodes = _SolveNodes(bound)
    builder = StateGraph(
        SolveState,
        context_schema=solve_context_model(),
        input_schema=SearchInput,
        output_schema=SearchOutput,
    )
    builder.add_node("prepare", node(nodes.prepare, "prepare"))
    for name, (schema, build) in _SUBGRAPHS.items():
        known = schema().model_fields
        own = {k: v for k, v in values.items() if k in known and k != "strategy"}
        # the search subgraph keeps the bound strategy if it runs it; the others run their own
        default = bound.strategy if _target(bound.strategy) == name else name
        sub = build(None if default == "search" else default, **clients, **own)
        builder.add_node(name, sub.compile(name=name))
        builder.add_edge(name, "respond")
    builder.add_node("respond", node(nodes.respond, "respond"))
    builder.add_edge(START, "prepare")
    builder.add_conditional_edges("prepare", _route, list(_SUBGRAPHS))
    builder.add_edge("respond", END)
    return builder


def _route(state: SolveState) -> str:
    return state["target"]


def create_solve_graph(
    strategy: str | None = "dora",
    *,
    policy: Policy | None = None,
    prm: RewardModel | None = None,
    embedder: Embedder | None = None,
    grader: Grader | None = None,
    checkpointer: Any = None,
    store: Any = None,
    interrupt_before: Sequence[str] | None = None,
    interrupt_after: Sequence[str] | None = None,
    name: str = "solve_math",
    debug: bool = False,
    **settings: Any,
) -> CompiledStateGraph[Any, Any, Any, Any]:
    """Compile the "solve math" graph (see `build_solve_graph`).

    Examples:
        Every strategy behind one graph; a run's context picks another one:

        >>> from langgraph_tts.sim.inprocess import sim_clients
        >>> graph = create_solve_graph("rebase", **sim_clients(seed=2), budget=4, seed=0)
        >>> out = graph.invoke({"problem": "What is 7 times 6?"})
        >>> out["answer"], out["result"]["strategy"], out["ledger"]["samples"]
        ('720', 'rebase', 20)
        >>> out = graph.invoke({"problem": "What is 7 times 6?"}, context={"strategy": "scale"})
        >>> out["answer"], out["result"]["strategy"], len(out["result"]["subproblems"])
        ('720', 'scale', 4)

        A chat input gets the answer back as a message:

        >>> out = graph.invoke({"messages": [("user", "What is 7 times 6?")]})
        >>> print(out["messages"][-1].content)
        The answer is $\\boxed{720}$.
    """
    builder = build_solve_graph(
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


class Solver:
    """Solves problems with the solve-math graph (built once) and a context's settings.

    Args:
        context: The settings (a `SolveContext`); default: `SolveContext()`.
        policy, prm, embedder, grader: Bound clients (default: from the settings' URLs).

    Examples:
        >>> import asyncio
        >>> from langgraph_tts import SolveContext
        >>> from langgraph_tts.sim.inprocess import sim_clients
        >>> ctx = SolveContext(strategy="best_of_n", budget=4, seed=0)
        >>> solver = Solver(ctx, **sim_clients(seed=2))
        >>> out = asyncio.run(solver("What is 7 times 6?"))
        >>> out["answer"], out["result"]["strategy"], out["ledger"]["samples"]
        ('720', 'best_of_n', 4)

        A call's `context` replaces the solver's for that problem; `on_event` receives the
        graphs' custom stream events (one per search iteration here):

        >>> events = []
        >>> ctx = SolveContext(strategy="beam", budget=4, seed=0)
        >>> out = asyncio.run(solver("What is 7 times 6?", context=ctx, on_event=events.append))
        >>> out["result"]["strategy"], len(events) == out["result"]["iterations"]
        ('beam', True)
    """

    def __init__(
        self,
        context: Any = None,
        *,
        policy: Policy | None = None,
        prm: RewardModel | None = None,
        embedder: Embedder | None = None,
        grader: Grader | None = None,
    ) -> None:
        self.context = context if context is not None else solve_context_model()()
        values = self.context.values()
        strategy = values.pop("strategy")
        self.graph = create_solve_graph(
            strategy, policy=policy, prm=prm, embedder=embedder, grader=grader, **values
        )

    async def __call__(
        self,
        problem: str,
        *,
        context: Any = None,
        on_event: Callable[[dict[str, Any]], None] | None = None,
    ) -> dict[str, Any]:
        """Solve one problem; `on_event` receives the graphs' custom stream events."""
        ctx = context if context is not None else self.context
        inputs = {"problem": problem}
        run: Any = self.graph
        final: dict[str, Any] = {}
        stream = run.astream(inputs, context=ctx, stream_mode=["custom", "values"], subgraphs=True)
        async for namespace, mode, chunk in stream:
            if mode == "custom" and on_event is not None:
                on_event(chunk)
            elif mode == "values" and not namespace:
                final = chunk
        keys = ("answer", "result", "ledger", "nodes", "completed")
        return {"problem": problem, **{k: final.get(k) for k in keys}}


async def asolve(
    problem: str,
    context: Any = None,
    *,
    policy: Policy | None = None,
    prm: RewardModel | None = None,
    embedder: Embedder | None = None,
    on_event: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Solve one problem with the context's strategy (see `Solver` to solve many).

    Examples:
        >>> import asyncio
        >>> from langgraph_tts import SolveContext
        >>> from langgraph_tts.sim.inprocess import sim_clients
        >>> ctx = SolveContext(strategy="self_consistency", budget=4, seed=0)
        >>> out = asyncio.run(asolve("What is 7 times 6?", ctx, **sim_clients(seed=2)))
        >>> out["answer"], [(g["answer"], g["count"]) for g in out["result"]["groups"]]
        ('720', [('720', 3), ('706', 1)])
    """
    solver = Solver(context, policy=policy, prm=prm, embedder=embedder)
    return await solver(problem, on_event=on_event)
