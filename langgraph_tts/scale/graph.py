"""Prebuilt SCALE graph (Xiao et al., arXiv 2512.00466): selective System-1/System-2 solving.

```
START -> decompose -> assess_difficulty -(route)-> solve_system1 -----------------------> propagate
                            ^                  \\--> solve_system2 ----------------------/    |
                            |                   \\-> prepare_search -> system2_search -> collect_search
                            \\------------------------ next sub-problem -------------------------/-> finalize
```
One pass of the loop per sub-problem. `system2_search` is the search graph as a subgraph
(`system2_strategy` other than `single`), so Studio can step into it and interrupts and
checkpoints reach inside.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph

from .._factory import RECURSION_LIMIT, bind_settings, compile_graph
from .._sync import node
from ..clients.types import Embedder, Policy, RewardModel
from ..context import scale_context_model, search_context_model
from ..search.graph import build_search_graph
from .nodes import ScaleNodes
from .state import ScaleInput, ScaleOutput, ScaleState

__all__ = ["RECURSION_LIMIT", "build_scale_graph", "create_scale_graph"]

_OWN_NODES = (
    "decompose",
    "assess_difficulty",
    "solve_system1",
    "solve_system2",
    "prepare_search",
    "collect_search",
    "propagate",
    "finalize",
)


def _search_subgraph(bound: Any, policy: Policy | None, **clients: Any) -> Any:
    """The System-2 search, bound to the SCALE graph's System-2 client and search settings."""
    shared = {k: v for k, v in bound.values().items() if k in search_context_model().model_fields}
    shared.pop("strategy")
    strategy = bound.system2_strategy if bound.system2_strategy != "single" else "dora"
    return build_search_graph(strategy, policy=policy, **clients, **shared).compile(name="search")


def build_scale_graph(
    strategy: str | None = "scale",
    *,
    policy: Policy | None = None,
    system1: Policy | None = None,
    system2: Policy | None = None,
    prm: RewardModel | None = None,
    embedder: Embedder | None = None,
    grader: Any = None,
    **settings: Any,
) -> StateGraph[Any, Any, Any, Any]:
    """Build (not compile) the SCALE graph, for users who add nodes or compile themselves.

    Args:
        strategy: Always `scale` (the argument keeps every factory's shape).
        policy: Default client of both systems; default: `ChatPolicy` on the settings'
            `base_url`/`model` (or `system1_*`/`system2_*` when set).
        system1: Client of System-1 (fast; also decomposes, selects and scores difficulty).
        system2: Client of System-2 (slow, thinking; or searched with `system2_strategy`).
        prm: Reward model for System-2 searches; default: `prm_url`, else a generative
            verifier on System-2.
        embedder: Embedder for System-2 DORA searches.
        grader: Answer-equivalence grader used by System-2 search votes.
        **settings: Any field of the SCALE context schema (`tau`, `system2_strategy`, ...).

    Returns:
        A `StateGraph` with the SCALE context schema.

    Raises:
        ConfigError: an unknown or invalid setting.

    Examples:
        With `system2_strategy="dora"`, System-2 is the search graph as a subgraph, whose
        nodes `get_graph(xray=True)` (and Studio) show:

        >>> from langgraph_tts.sim.inprocess import sim_clients
        >>> builder = build_scale_graph(**sim_clients(seed=2), system2_strategy="dora", budget=4)
        >>> nodes = builder.compile().get_graph(xray=True).nodes
        >>> [n.split(":")[1] for n in nodes if n.startswith("system2_search:")]
        ['init', 'expand', 'check_done', 'score', 'embed', 'allocate', 'vote']
    """
    model = scale_context_model()
    bound = bind_settings(model, strategy, settings)
    nodes = ScaleNodes(policy=policy, system1=system1, system2=system2, defaults=bound)
    search = _search_subgraph(bound, system2 or policy, prm=prm, embedder=embedder, grader=grader)
    builder = StateGraph(
        ScaleState, context_schema=model, input_schema=ScaleInput, output_schema=ScaleOutput
    )
    for name in _OWN_NODES:
        builder.add_node(name, node(getattr(nodes, name), name))
    builder.add_node("system2_search", search)
    builder.add_edge(START, "decompose")
    builder.add_edge("decompose", "assess_difficulty")
    builder.add_conditional_edges(
        "assess_difficulty",
        nodes.route,
        {"system1": "solve_system1", "system2": "solve_system2", "search": "prepare_search"},
    )
    builder.add_edge("prepare_search", "system2_search")
    builder.add_edge("system2_search", "collect_search")
    for solved in ("solve_system1", "solve_system2", "collect_search"):
        builder.add_edge(solved, "propagate")
    builder.add_conditional_edges("propagate", nodes.next_step, ["assess_difficulty", "finalize"])
    builder.add_edge("finalize", END)
    return builder


def create_scale_graph(
    strategy: str | None = "scale",
    *,
    policy: Policy | None = None,
    system1: Policy | None = None,
    system2: Policy | None = None,
    prm: RewardModel | None = None,
    embedder: Embedder | None = None,
    grader: Any = None,
    checkpointer: Any = None,
    store: Any = None,
    interrupt_before: Sequence[str] | None = None,
    interrupt_after: Sequence[str] | None = None,
    name: str = "scale",
    debug: bool = False,
    **settings: Any,
) -> CompiledStateGraph[Any, Any, Any, Any]:
    """Compile the SCALE graph (see `build_scale_graph`).

    Examples:
        Sub-problems with difficulty above `tau` go to System-2; the custom stream has one
        event per solved sub-problem (against vLLM: `policy=ChatPolicy(url, "Qwen/Qwen3-32B")`):

        >>> from langgraph_tts.sim.inprocess import sim_clients
        >>> graph = create_scale_graph(**sim_clients(seed=2), tau=0.5, seed=0)
        >>> for event in graph.stream({"problem": "What is 7 times 6?"}, stream_mode="custom"):
        ...     print(event["index"], event["difficulty"], event["mode"], event["answer"])
        0 0.47 system1 468
        1 0.34 system1 130
        2 0.1 system1 213
        3 0.9 system2 720
        >>> out = graph.invoke({"problem": "What is 7 times 6?"})
        >>> out["answer"], sorted(out["result"]["by_mode"])
        ('720', ['overhead', 'system1', 'system2'])
    """
    builder = build_scale_graph(
        strategy,
        policy=policy,
        system1=system1,
        system2=system2,
        prm=prm,
        embedder=embedder,
        grader=grader,
        **settings,
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
