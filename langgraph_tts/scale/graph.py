"""Prebuilt SCALE graph (Xiao et al., arXiv 2512.00466): selective System-1/System-2 solving.

```
START -> decompose -> assess_difficulty -(route)-> solve_system1 --> propagate -> ... -> finalize
                            ^            \\------> solve_system2 -/      |
                            \\-------------- next sub-problem ------------/
```
One pass of the loop per sub-problem, so the run needs about 4 super-steps per sub-problem.
"""

from __future__ import annotations

from typing import Any

from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph

from ..clients.types import Embedder, Policy, RewardModel
from ..context import ScaleContext
from .nodes import ScaleNodes
from .state import ScaleInput, ScaleOutput, ScaleState

__all__ = ["RECURSION_LIMIT", "build_scale_graph", "create_scale_graph"]

RECURSION_LIMIT = 10_000
"""Set explicitly: 10 sub-problems take ~40 super-steps, more than langchain-core's default 25."""


def build_scale_graph(
    *,
    policy: Policy | None = None,
    system1: Policy | None = None,
    system2: Policy | None = None,
    prm: RewardModel | None = None,
    embedder: Embedder | None = None,
    grader: Any = None,
    **settings: Any,
) -> StateGraph[ScaleState, ScaleContext, ScaleInput, ScaleOutput]:
    """Build (not compile) the SCALE graph, for users who add nodes or compile themselves.

    Args:
        policy: Default client of both systems; default: `ChatPolicy` on the context's
            `base_url`/`model` (or `system1_*`/`system2_*` when set).
        system1: Client of System-1 (fast; also decomposes, selects and scores difficulty).
        system2: Client of System-2 (slow, thinking; or searched with `system2_strategy`).
        prm: Reward model for System-2 searches; default: `prm_url`, else a generative
            verifier on System-2.
        embedder: Embedder for System-2 DORA searches.
        grader: Answer-equivalence grader used by System-2 search votes.
        **settings: Any `ScaleContext` field, as defaults for runs without a context.

    Returns:
        A `StateGraph` with `context_schema=ScaleContext`.

    Raises:
        ConfigError: an unknown or invalid setting.
    """
    nodes = ScaleNodes(
        policy=policy,
        system1=system1,
        system2=system2,
        prm=prm,
        embedder=embedder,
        grader=grader,
        defaults=_defaults(settings),
    )
    builder = StateGraph(
        ScaleState,
        context_schema=ScaleContext,
        input_schema=ScaleInput,
        output_schema=ScaleOutput,
    )
    builder.add_node("decompose", nodes.decompose)
    builder.add_node("assess_difficulty", nodes.assess_difficulty)
    builder.add_node("solve_system1", nodes.solve_system1)
    builder.add_node("solve_system2", nodes.solve_system2)
    builder.add_node("propagate", nodes.propagate)
    builder.add_node("finalize", nodes.finalize)
    builder.add_edge(START, "decompose")
    builder.add_edge("decompose", "assess_difficulty")
    builder.add_conditional_edges(
        "assess_difficulty",
        nodes.route,
        {"system1": "solve_system1", "system2": "solve_system2"},
    )
    builder.add_edge("solve_system1", "propagate")
    builder.add_edge("solve_system2", "propagate")
    builder.add_conditional_edges("propagate", nodes.next_step, ["assess_difficulty", "finalize"])
    builder.add_edge("finalize", END)
    return builder


def _defaults(settings: dict[str, Any]) -> ScaleContext | None:
    """Validated defaults, or None to read them (and the environment) on first use."""
    if not settings:
        return None
    from ..context import with_overrides

    return with_overrides(ScaleContext(), **settings)  # type: ignore[return-value]


def create_scale_graph(
    policy: Policy | None = None,
    *,
    system1: Policy | None = None,
    system2: Policy | None = None,
    prm: RewardModel | None = None,
    embedder: Embedder | None = None,
    checkpointer: Any = None,
    store: Any = None,
    name: str = "scale",
    grader: Any = None,
    **settings: Any,
) -> CompiledStateGraph[ScaleState, ScaleContext, ScaleInput, ScaleOutput]:
    """Compile the SCALE graph.

    Example:
        ```python
        from langgraph_tts.clients.policy import ChatPolicy
        from langgraph_tts.scale import create_scale_graph

        qwen3 = ChatPolicy("http://127.0.0.1:8000/v1", "Qwen/Qwen3-32B")
        graph = create_scale_graph(qwen3, tau=0.2)
        async for mode, chunk in graph.astream(
            {"problem": "Find the remainder when 2^100 is divided by 7."},
            stream_mode=["custom", "values"],
        ):
            ...  # custom: one event per solved sub-problem
        out = chunk  # the last values chunk: answer, result, ledger
        ```

    A run may pass `context=ScaleContext(...)`; it replaces the defaults given here (the
    clients bound here are kept).
    """
    builder = build_scale_graph(
        policy=policy,
        system1=system1,
        system2=system2,
        prm=prm,
        embedder=embedder,
        grader=grader,
        **settings,
    )
    graph = builder.compile(checkpointer=checkpointer, store=store, name=name)
    return graph.with_config(recursion_limit=RECURSION_LIMIT)
