"""`create_math_tool`: test-time scaling as a LangChain tool for agents.

The tool's input is `problem`; its content is the answer (what the agent's model reads) and
its artifact the run's `result` and `ledger` (what the application keeps), so it works in
LangGraph's `ToolNode` and in `langchain.agents.create_agent`.
"""

from __future__ import annotations

from typing import Any

from langchain_core.tools import BaseTool, StructuredTool
from pydantic import BaseModel, Field

from .clients.types import Embedder, Policy, RewardModel
from .grading import Grader
from .solve import create_solve_graph

__all__ = ["MathToolInput", "create_math_tool"]

DESCRIPTION = (
    "Solve a math problem with test-time scaling ({strategy}, budget {budget}): many sampled "
    "solutions checked by a process reward model. Input: the full problem statement, with "
    "every number and condition. Returns the final answer."
)


class MathToolInput(BaseModel):
    """The tool's arguments."""

    problem: str = Field(description="The complete math problem to solve.", min_length=1)


def create_math_tool(
    strategy: str = "dora",
    *,
    budget: int = 16,
    policy: Policy | None = None,
    prm: RewardModel | None = None,
    embedder: Embedder | None = None,
    grader: Grader | None = None,
    name: str = "solve_math",
    description: str | None = None,
    **settings: Any,
) -> BaseTool:
    """A tool that solves a problem with `strategy` at `budget` (settings are validated now).

    Examples:
        Called as an agent's model would call it (content: the answer; artifact: the run):

        >>> from langgraph_tts.sim.inprocess import sim_clients
        >>> tool = create_math_tool("best_of_n", budget=4, seed=0, **sim_clients(seed=2))
        >>> call = {"name": "solve_math", "args": {"problem": "What is 7 times 6?"}}
        >>> message = tool.invoke({"type": "tool_call", "id": "1", **call})
        >>> message.content, message.artifact["ledger"]["samples"]
        ('720', 4)

        `ToolNode([tool])` in a graph, or `create_agent(model, [tool])`, runs it the same way.
    """
    graph = create_solve_graph(
        strategy,
        policy=policy,
        prm=prm,
        embedder=embedder,
        grader=grader,
        budget=budget,
        name=name,
        **settings,
    )

    def _reply(out: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        answer = out.get("answer")
        content = str(answer) if answer is not None else "No answer found."
        return content, {"answer": answer, "result": out.get("result"), "ledger": out.get("ledger")}

    def solve(problem: str) -> tuple[str, dict[str, Any]]:
        return _reply(graph.invoke({"problem": problem}))

    async def asolve(problem: str) -> tuple[str, dict[str, Any]]:
        return _reply(await graph.ainvoke({"problem": problem}))

    return StructuredTool.from_function(
        func=solve,
        coroutine=asolve,
        name=name,
        description=description or DESCRIPTION.format(strategy=strategy, budget=budget),
        args_schema=MathToolInput,
        response_format="content_and_artifact",
    )
