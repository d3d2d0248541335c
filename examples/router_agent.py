"""An agent that routes math questions: easy ones by chain-of-thought, hard ones by DORA.

Both solvers are prebuilt graphs added as subgraph nodes of the agent's own graph, which has
its own state and its own context type; each subgraph runs on the settings it was built with.
`graph.get_graph(xray=True)` shows the inner nodes, and Studio can step into them.

    python examples/router_agent.py
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal, TypedDict

from langgraph.graph import END, START, StateGraph

from langgraph_tts import create_search_graph
from langgraph_tts.ledger import Ledger, merge_ledgers
from langgraph_tts.sim.inprocess import SimEmbedder, SimPolicy, SimPRM
from langgraph_tts.sim.server import SimConfig
from langgraph_tts.sim.world import make_problems


@dataclass
class AgentContext:
    """The agent's own run settings (not langgraph-tts's)."""

    hard_words: int = 20


class AgentState(TypedDict, total=False):
    problem: str
    route: str
    answer: str | None
    result: dict[str, Any]
    ledger: Annotated[Ledger, merge_ledgers]


def triage(state: AgentState, runtime: Any) -> dict[str, Any]:
    """A cheap difficulty signal: long statements go to the deliberate solver."""
    hard = len(state["problem"].split()) > runtime.context.hard_words
    return {"route": "deliberate" if hard else "fast"}


def pick(state: AgentState) -> Literal["fast", "deliberate"]:
    return "deliberate" if state["route"] == "deliberate" else "fast"


def build(config: SimConfig) -> Any:
    clients = {"policy": SimPolicy(config), "prm": SimPRM(config), "embedder": SimEmbedder(config)}
    builder = StateGraph(AgentState, context_schema=AgentContext)
    builder.add_node("triage", triage)
    builder.add_node("fast", create_search_graph("cot", **clients, seed=0))
    builder.add_node("deliberate", create_search_graph("dora", **clients, budget=16, seed=0))
    builder.add_edge(START, "triage")
    builder.add_conditional_edges("triage", pick, ["fast", "deliberate"])
    builder.add_edge("fast", END)
    builder.add_edge("deliberate", END)
    return builder.compile()


def main() -> None:
    config = SimConfig(seed=16)
    graph = build(config)
    inner = [n for n in graph.get_graph(xray=True).nodes if ":" in n]
    print(f"subgraph nodes: {', '.join(inner[:4])}, ...")
    for problem in make_problems(2, seed=16):
        out = graph.invoke({"problem": problem.text}, context=AgentContext(hard_words=25))
        print(f"{problem.text[:60]}...")
        print(
            f"  route: {out['route']} ({out['result']['strategy']}), "
            f"answer: {out['answer']} (truth {problem.answer}), "
            f"{out['ledger']['samples']} samples"
        )


if __name__ == "__main__":
    main()
