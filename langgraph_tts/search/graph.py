"""Prebuilt search graph: best-of-N, self-consistency, CoT, beam search, DVTS, REBASE, DORA.

```
START -> init -> expand -> check_done -> score ----> allocate -> (expand | vote) -> END
                                     \\-> embed ---/
```
`score` and `embed` run in the same super-step, so an iteration costs about one policy, one
PRM and one embedding round trip. Every node has an async function and a sync twin, so
`invoke`/`stream` work as well as `ainvoke`/`astream`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph

from .._factory import RECURSION_LIMIT, bind_settings, compile_graph
from .._sync import node
from ..clients.types import Embedder, Policy, RewardModel
from ..context import search_context_model
from ..grading import Grader
from ..state import SearchInput, SearchOutput, SearchState
from .nodes import SearchNodes

__all__ = ["RECURSION_LIMIT", "build_search_graph", "create_search_graph"]


def build_search_graph(
    strategy: str | None = None,
    *,
    policy: Policy | None = None,
    prm: RewardModel | None = None,
    embedder: Embedder | None = None,
    grader: Grader | None = None,
    **settings: Any,
) -> StateGraph[Any, Any, Any, Any]:
    """Build (not compile) the search graph, for users who add nodes or compile themselves.

    Args:
        strategy: The strategy runs use unless their context or input sets another (default:
            dora). Any strategy of kind `sample` or `search` in the registry.
        policy: Policy client; default: `ChatPolicy` on the settings' `base_url`.
        prm: Reward model; default: `PoolingPRM` on `prm_url`, else the policy as a
            generative verifier.
        embedder: Embedder for DORA; default from `embed_url` / the `embedder` setting.
        grader: Answer-equivalence grader used by the vote.
        **settings: Any field of the graph's context schema (`budget`, `beam_width`, ...).

    Returns:
        A `StateGraph` whose context schema lists every setting with its default.

    Raises:
        ConfigError: an unknown setting (naming the closest valid one) or an invalid value.

    Examples:
        Add a node after the vote, then compile (here on the in-process simulator):

        >>> from langgraph_tts.sim.inprocess import sim_clients
        >>> builder = build_search_graph("best_of_n", **sim_clients(seed=2), budget=4, seed=0)
        >>> def exclaim(state):
        ...     return {"answer": state["answer"] + "!"}
        >>> graph = builder.add_node(exclaim).add_edge("vote", "exclaim").compile()
        >>> graph.invoke({"problem": "What is 7 times 6?"})["answer"]
        '720!'
    """
    model = search_context_model()
    nodes = SearchNodes(
        policy=policy,
        reward=prm,
        embedder=embedder,
        grader=grader,
        defaults=bind_settings(model, strategy, settings),
    )
    builder = StateGraph(
        SearchState, context_schema=model, input_schema=SearchInput, output_schema=SearchOutput
    )
    for name in ("init", "expand", "check_done", "score", "embed", "allocate", "vote"):
        builder.add_node(name, node(getattr(nodes, name), name))
    builder.add_edge(START, "init")
    builder.add_edge("init", "expand")
    builder.add_edge("expand", "check_done")
    builder.add_edge("check_done", "score")
    builder.add_edge("check_done", "embed")
    builder.add_edge(["score", "embed"], "allocate")
    builder.add_conditional_edges("allocate", _after_allocate, ["expand", "vote"])
    builder.add_edge("vote", END)
    return builder


def _after_allocate(state: SearchState) -> str:
    return "vote" if state.get("done") else "expand"


def create_search_graph(
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
    name: str = "search",
    debug: bool = False,
    **settings: Any,
) -> CompiledStateGraph[Any, Any, Any, Any]:
    """Compile the search graph (see `build_search_graph` for the arguments).

    Examples:
        On the in-process simulator (against vLLM: `policy=ChatPolicy(url, model)`,
        `prm=PoolingPRM(url, model)`, `embedder=OpenAIEmbedder(url, model)`, or no clients
        and the `base_url`/`prm_url`/`embed_url` settings):

        >>> from langgraph_tts.sim.inprocess import sim_clients
        >>> graph = create_search_graph("dora", **sim_clients(seed=2), budget=4, seed=0)
        >>> out = graph.invoke({"problem": "What is 7 times 6?"})
        >>> out["answer"], out["result"]["strategy"], out["result"]["voters"]
        ('720', 'dora', 4)
        >>> out["ledger"]["samples"], out["ledger"]["prm_requests"]
        (20, 5)

        A run's context overrides the bound settings it names:

        >>> out = graph.invoke({"problem": "What is 7 times 6?"}, context={"budget": 2})
        >>> out["result"]["budget"], out["result"]["strategy"]
        (2, 'dora')

    A run's context changes only the fields it sets (`context={"budget": 8}` keeps the
    strategy bound here); `checkpointer`, `store`, `interrupt_before`, `interrupt_after`,
    `name` and `debug` go to LangGraph's `compile`.
    """
    builder = build_search_graph(
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
