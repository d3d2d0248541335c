"""Compose the search nodes into your own graph: DORA with an early exit on consensus.

The prebuilt nodes are plain async methods of `SearchNodes`; here a custom `consensus` node
stops the search as soon as the finished solutions agree strongly enough, which saves
iterations on easy problems. Everything else (state, ledger, tree) is the library's.

    python examples/custom_graph.py
"""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime

from langgraph_tts import SearchContext, SearchNodes, SearchState
from langgraph_tts.sim.inprocess import SimEmbedder, SimPolicy, SimPRM
from langgraph_tts.sim.server import SimConfig
from langgraph_tts.sim.world import make_problems


async def consensus(state: SearchState, runtime: Runtime[SearchContext]) -> dict[str, Any]:
    """Stop once 4 finished solutions share one answer."""
    answers = [state["nodes"][i]["answer"] for i in state.get("completed", [])]
    top = Counter(a for a in answers if a).most_common(1)
    if not state.get("done") and top and top[0][1] >= 4:
        return {"done": True, "stop_reason": "consensus"}
    return {}


def build() -> Any:
    config = SimConfig(scenario="easy", seed=4)  # the same world as the problems below
    nodes = SearchNodes(
        policy=SimPolicy(config), reward=SimPRM(config), embedder=SimEmbedder(config)
    )
    builder = StateGraph(SearchState, context_schema=SearchContext)
    for name in ("init", "expand", "check_done", "score", "embed", "allocate", "vote"):
        builder.add_node(name, getattr(nodes, name))
    builder.add_node("consensus", consensus)
    builder.add_edge(START, "init")
    builder.add_edge("init", "expand")
    builder.add_edge("expand", "check_done")
    builder.add_edge("check_done", "consensus")
    builder.add_edge("consensus", "score")
    builder.add_edge("consensus", "embed")
    builder.add_edge(["score", "embed"], "allocate")
    builder.add_conditional_edges(
        "allocate", lambda s: "vote" if s.get("done") else "expand", ["expand", "vote"]
    )
    builder.add_edge("vote", END)
    return builder.compile()


async def main() -> None:
    graph = build()
    problem = make_problems(1, scenario="easy", seed=4)[0]
    ctx = SearchContext(strategy="dora", budget=16, seed=1)
    out = await graph.ainvoke({"problem": problem.text}, context=ctx)
    print(
        f"answer: {out['answer']} (truth {problem.answer}); stopped: "
        f"{out['result']['stop_reason']} after {out['result']['iterations']} iterations, "
        f"{out['ledger']['samples']} samples"
    )


if __name__ == "__main__":
    asyncio.run(main())
