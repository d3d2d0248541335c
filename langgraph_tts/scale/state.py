"""Graph state of SCALE: the chosen outline, one record per sub-problem, and the spend.

A sub-problem record is filled in by several nodes (difficulty, then solving), so the list has
a reducer that updates records by index. Ledgers are split three ways so a run can say where
its tokens went: `overhead` (decompose, select, difficulty), and each sub-problem's own solving
ledger, which `finalize` sums into System-1 and System-2 totals.
"""

from __future__ import annotations

import operator
from typing import Annotated, Any, Literal, NotRequired

from langchain_core.messages import AnyMessage
from langgraph.graph.message import add_messages
from typing_extensions import TypedDict

from ..ledger import Ledger, merge_ledgers

__all__ = [
    "DifficultySource",
    "Mode",
    "OutlineVersion",
    "ScaleInput",
    "ScaleOutput",
    "ScaleState",
    "SubProblem",
    "merge_subproblems",
]

Mode = Literal["system1", "system2"]
"""System-1: fast, non-thinking solving; System-2: slow, thinking solving (or a search)."""

DifficultySource = Literal["model", "forced_last", "fallback", "whole_problem"]
"""Where a difficulty came from: the model's score; `force_last_hard` (0.9); the fallback
after unusable replies (1.0); the one-sub-problem fallback when no outline was valid (1.0)."""


class OutlineVersion(TypedDict):
    """One sampled outline version and how it went."""

    version: int
    """1-based version number, in sampling order."""
    steps: list[str] | None
    """The sub-problems, or None if every attempt was unusable."""
    attempts: int
    """Requests spent on this version (1 + retries)."""
    error: str | None
    """Why the last attempt was rejected, if none was usable."""


class SubProblem(TypedDict, total=False):
    """One sub-problem: its text, difficulty, the system that solved it, and what it cost."""

    index: int
    """0-based position in the outline."""
    text: str
    """The sub-problem as given to the solver (the last one is the original question)."""
    difficulty: float | None
    """Score in [0, 1]; System-2 iff it is > tau (unless `forced_mode` says otherwise)."""
    difficulty_source: DifficultySource
    difficulty_reply: str | None
    """The model's raw reply to the difficulty prompt (last attempt), for auditing."""
    difficulty_ledger: Ledger
    """Spend of assessing this sub-problem (part of the overhead)."""
    forced_mode: Mode | None
    """Set when a fallback decides the system regardless of tau."""
    mode: Mode | None
    """The system that solved it."""
    solver: str
    """`single` (one sample, the paper) or the search strategy used for System-2."""
    solution: str
    """The solver's final text (the answer part; thinking is not kept here)."""
    answer: str | None
    """Extracted answer; None if the solution had none."""
    finish_reason: str | None
    tokens: int
    """Completion tokens spent solving it (the paper's tokens per iteration)."""
    calls: int
    """Policy requests spent solving it."""
    ledger: Ledger
    """Spend of solving it (System-2 searches included)."""
    search: dict[str, Any] | None
    """The search graph's `result` when System-2 used a search strategy."""


def merge_subproblems(
    left: list[SubProblem] | None, right: list[SubProblem] | None
) -> list[SubProblem]:
    """Reducer: update records by `index` (partial updates merge), appending new indices."""
    out = list(left or [])
    for record in right or []:
        idx = record["index"]
        if idx < len(out):
            out[idx] = {**out[idx], **record}
        elif idx == len(out):
            out.append(record)
        else:
            msg = f"sub-problem index {idx} skips ahead of the outline (size {len(out)})"
            raise ValueError(msg)
    return out


class ScaleInput(TypedDict):
    """What a caller passes in.

    The SCALE code splits each problem offline into conditions and question; pass them if you
    have them. Otherwise both default to the whole problem.
    """

    problem: NotRequired[str]
    """The problem (with no `problem`, the last human message of `messages`)."""
    messages: NotRequired[Annotated[list[AnyMessage], add_messages]]
    """A chat; the answer is appended as an `AIMessage` when the problem came from it."""
    settings: NotRequired[dict[str, Any]]
    """Per-call settings above the run's context (how a parent configures this subgraph)."""
    conditions: NotRequired[str]
    """The given information, shown to every solver (default: the problem)."""
    question: NotRequired[str]
    """What is asked; replaces the outline's last sub-problem (default: the problem)."""


class ScaleOutput(TypedDict, total=False):
    """What a run returns."""

    answer: str | None
    result: dict[str, Any]
    ledger: Ledger
    messages: Annotated[list[AnyMessage], add_messages]


class ScaleState(TypedDict, total=False):
    """State of one SCALE run (one problem).

    Examples:
        Paused before System-2 solves the hard sub-problem (with a checkpointer):

        >>> from langgraph.checkpoint.memory import InMemorySaver
        >>> from langgraph_tts import create_scale_graph
        >>> from langgraph_tts.sim.inprocess import sim_clients
        >>> graph = create_scale_graph(
        ...     **sim_clients(seed=2), tau=0.5, seed=0,
        ...     checkpointer=InMemorySaver(), interrupt_before=["solve_system2"],
        ... )
        >>> thread = {"configurable": {"thread_id": "1"}}
        >>> _ = graph.invoke({"problem": "What is 7 times 6?"}, thread)
        >>> state = graph.get_state(thread).values
        >>> state["current"], [(s["difficulty"], s["answer"]) for s in state["subproblems"]]
        (3, [(0.47, '468'), (0.34, '130'), (0.1, '213'), (0.9, None)])
        >>> graph.invoke(None, thread)["answer"]
        '720'
    """

    problem: str
    messages: Annotated[list[AnyMessage], add_messages]
    settings: dict[str, Any]
    """In the input: per-call settings. While a System-2 search runs: the search's settings."""
    user_settings: dict[str, Any]
    reply: bool
    subproblem: str
    """The prompt of the sub-problem a System-2 search is solving (the search's input)."""
    conditions: str
    question: str
    outlines: list[OutlineVersion]
    selected_version: int | None
    """1-based version chosen; None when no outline was valid."""
    selection: str
    """How it was chosen: `llm`, `vote`, `first`, `only` or `none`."""
    subproblems: Annotated[list[SubProblem], merge_subproblems]
    current: int
    """Index of the sub-problem being assessed or solved."""
    context: list[str]
    """Propagated work: one `{sub-problem}\\nstep answer: {answer}` item per solved step."""
    fallbacks: Annotated[list[str], operator.add]
    """Human-readable notes of everything that fell back."""
    overhead: Annotated[Ledger, merge_ledgers]
    """Spend of decompose, select and difficulty assessment."""
    ledger: Annotated[Ledger, merge_ledgers]
    """Spend of the whole run."""
    started_at: float
    answer: str | None
    result: dict[str, Any]
