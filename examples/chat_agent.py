"""A chat agent (`MessagesState`) that calls test-time scaling as a tool, and one that uses a
strategy graph as its node directly.

The agent's own model here is a tiny rule-based stand-in (no LLM needed to run this); put any
tool-calling chat model in its place, e.g. with `langchain.agents.create_agent(model, [tool])`.

    python examples/chat_agent.py
"""

from __future__ import annotations

from typing import Any

from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.prebuilt import ToolNode, tools_condition

from langgraph_tts import create_math_tool, create_solve_graph
from langgraph_tts.sim.inprocess import SimEmbedder, SimPolicy, SimPRM
from langgraph_tts.sim.server import SimConfig
from langgraph_tts.sim.world import make_problems


def agent(state: MessagesState) -> dict[str, Any]:
    """Calls the math tool on the user's question, then reports the tool's answer."""
    last = state["messages"][-1]
    if isinstance(last, ToolMessage):
        return {"messages": [AIMessage(f"The answer is {last.content}.")]}
    call = {"name": "solve_math", "args": {"problem": last.content}, "id": "call-1"}
    return {"messages": [AIMessage(content="", tool_calls=[call])]}


def main() -> None:
    config = SimConfig(seed=6)
    clients = {"policy": SimPolicy(config), "prm": SimPRM(config), "embedder": SimEmbedder(config)}
    problem = make_problems(1, seed=6)[0]

    tool = create_math_tool("dora", budget=8, seed=0, **clients)
    builder = StateGraph(MessagesState)
    builder.add_node("agent", agent)
    builder.add_node("tools", ToolNode([tool]))
    builder.add_edge(START, "agent")
    builder.add_conditional_edges("agent", tools_condition)
    builder.add_edge("tools", "agent")
    out = builder.compile().invoke({"messages": [HumanMessage(problem.text)]})
    tool_message = next(m for m in out["messages"] if isinstance(m, ToolMessage))
    print(f"user:  {problem.text}")
    print(f"agent: {out['messages'][-1].content}")
    print(f"tool answer: {tool_message.content} (truth {problem.answer}), ")
    print(f"  ledger in the artifact: {tool_message.artifact['ledger']['samples']} samples")

    # the solve graph itself is a MessagesState node: the last human message is the problem
    chat = StateGraph(MessagesState)
    chat.add_node("math", create_solve_graph("best_of_n", budget=8, seed=0, **clients))
    chat.add_edge(START, "math")
    chat.add_edge("math", END)
    out = chat.compile().invoke({"messages": [HumanMessage(problem.text)]})
    reply = out["messages"][-1]
    report = reply.response_metadata["langgraph_tts"]
    print(f"graph reply: {reply.content} ({report['strategy']}, {report['voters']} voters)")
    print(f"answer: {report['answer']} (truth {problem.answer})")


if __name__ == "__main__":
    main()
