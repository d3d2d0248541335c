"""Prebuilt search graph: best-of-N, self-consistency, CoT, beam search, DVTS, REBASE, DORA.

```
START -> init -> expand -> check_done -> score ----> allocate -> (expand | vote) -> END
                                     \\-> embed ---/
```
`score` and `embed` run in the same super-step, so an iteration costs about one policy, one
PRM and one embedding round trip.
"""

from __future__ import annotations

from typing import Any

from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph

from ..clients.types import Embedder, Policy, RewardModel
from ..context import SEARCH_STRATEGIES, SearchContext
from ..errors import ConfigError
from ..grading import Grader
from ..state import SearchInput, SearchOutput, SearchState
from .nodes import SearchNodes

__all__ = ["RECURSION_LIMIT", "build_search_graph", "create_search_graph"]

RECURSION_LIMIT = 10_000
"""Set explicitly: 40 iterations need ~170 super-steps, more than langchain-core's default 25."""


def _defaults(strategy: str | None, settings: dict[str, Any]) -> SearchContext:
    if strategy is not None:
        if strategy not in SEARCH_STRATEGIES:
            known = ", ".join(SEARCH_STRATEGIES)
            raise ConfigError(f"unknown strategy {strategy!r}; known: {known}")
        settings = {**settings, "strategy": strategy}
    return SearchContext(**settings)


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
        strategy: default strategy when a run passes no context (see `SearchContext`).
        policy: policy client; default: `ChatPolicy` on the context's `base_url`.
        prm: reward model; default: `PoolingPRM` on `prm_url`, else the policy as a
            generative verifier.
        embedder: embedder for DORA; default from `embed_url` / the `embedder` setting.
        grader: answer-equivalence grader used by the vote.
        **settings: any other `SearchContext` field, as defaults for runs without a context.

    Returns:
        A `StateGraph` with `context_schema=SearchContext`.
    """
    nodes = SearchNodes(
        policy=policy,
        reward=prm,
        embedder=embedder,
        grader=grader,
        defaults=_defaults(strategy, settings),
    )
    builder = StateGraph(
        SearchState,
        context_schema=SearchContext,
        input_schema=SearchInput,
        output_schema=SearchOutput,
    )
    builder.add_node("init", nodes.init)
    builder.add_node("expand", nodes.expand)
    builder.add_node("check_done", nodes.check_done)
    builder.add_node("score", nodes.score)
    builder.add_node("embed", nodes.embed)
    builder.add_node("allocate", nodes.allocate)
    builder.add_node("vote", nodes.vote)
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
    policy: Policy | None = None,
    prm: RewardModel | None = None,
    embedder: Embedder | None = None,
    *,
    checkpointer: Any = None,
    store: Any = None,
    name: str = "search",
    grader: Grader | None = None,
    **settings: Any,
) -> CompiledStateGraph[Any, Any, Any, Any]:
    """Compile the search graph.

    Example:
        ```python
        from langgraph_tts import create_search_graph
        from langgraph_tts.clients import ChatPolicy, PoolingPRM, OpenAIEmbedder

        graph = create_search_graph(
            "dora",
            ChatPolicy("http://127.0.0.1:8000/v1", "Qwen/Qwen2.5-1.5B-Instruct"),
            PoolingPRM("http://127.0.0.1:8001", "Qwen/Qwen2.5-Math-PRM-7B"),
            OpenAIEmbedder("http://127.0.0.1:8002/v1", "BAAI/bge-m3"),
            budget=16,
        )
        out = await graph.ainvoke({"problem": "What is 2+3?"})
        out["answer"], out["ledger"]
        ```

    A run may still pass `context=SearchContext(...)`; it then replaces the defaults given here
    (the clients bound here are kept).
    """
    builder = build_search_graph(
        strategy, policy=policy, prm=prm, embedder=embedder, grader=grader, **settings
    )
    graph = builder.compile(checkpointer=checkpointer, store=store, name=name)
    return graph.with_config(recursion_limit=RECURSION_LIMIT)
