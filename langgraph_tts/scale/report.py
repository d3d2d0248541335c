"""Answers of sub-problems and the run's report: pure functions over the SCALE state."""

from __future__ import annotations

from typing import Any

from ..answers import extract_answer
from ..ledger import Ledger, merge_ledgers
from .state import ScaleState

__all__ = ["NO_ANSWER", "build_report", "by_mode", "subproblem_answer"]

NO_ANSWER = "(no answer)"
"""What the next sub-problems see as the answer of a sub-problem that produced none."""


def subproblem_answer(
    idx: int,
    solution: str,
    *,
    reasoning: str | None = None,
    finish_reason: str | None = None,
) -> tuple[str | None, list[str]]:
    """A sub-problem's answer and fallback notes.

    Tried in order: `\\boxed{}` (or "the answer is") in the solution, the same in the thinking
    text, then the solution's last number. Each step past the first is noted, and so is
    finding nothing at all.
    """
    answer = extract_answer(solution)
    if answer is not None:
        return answer, []
    if reasoning:
        answer = extract_answer(reasoning)
        if answer is not None:
            return answer, [f"solve: sub-problem {idx}: answer taken from the thinking text"]
    answer = extract_answer(solution, last_number_fallback=True)
    if answer is not None:
        return answer, [f"solve: sub-problem {idx}: no \\boxed{{}} answer; used the last number"]
    why = "empty solution" if not solution.strip() else "no answer in the solution"
    if finish_reason == "length":
        why += " (cut at the token limit)"
    return None, [f"solve: sub-problem {idx}: {why}; propagated as {NO_ANSWER!r}"]


def by_mode(state: ScaleState) -> dict[str, Ledger]:
    """Spend split into System-1 solving, System-2 solving and overhead."""
    out: dict[str, Ledger] = {"system1": {}, "system2": {}, "overhead": {}}
    out["overhead"] = merge_ledgers({}, state.get("overhead", {}))
    for sub in state["subproblems"]:
        mode = sub.get("mode")
        if mode:
            out[mode] = merge_ledgers(out[mode], sub.get("ledger", {}))
    return out


def _subproblem_entry(sub: Any) -> dict[str, Any]:
    entry = {
        "index": sub["index"],
        "text": sub["text"],
        "difficulty": sub.get("difficulty"),
        "difficulty_source": sub.get("difficulty_source"),
        "mode": sub.get("mode"),
        "solver": sub.get("solver"),
        "answer": sub.get("answer"),
        "solution": sub.get("solution", ""),
        "tokens": sub.get("tokens", 0),
        "calls": sub.get("calls", 0),
        "ledger": sub.get("ledger", {}),
        "difficulty_ledger": sub.get("difficulty_ledger", {}),
    }
    if sub.get("search"):
        entry["search"] = sub["search"]
    return entry


def build_report(
    ctx: Any, state: ScaleState, answer: str | None, fallbacks: list[str]
) -> dict[str, Any]:
    """The `result` of a run: settings in force, the outline, each sub-problem, spend by mode."""
    subs = state["subproblems"]
    solved = [s for s in subs if s.get("mode")]
    hard = sum(1 for s in solved if s.get("mode") == "system2")
    outlines = state.get("outlines", [])
    return {
        "answer": answer,
        "strategy": "scale",
        "tau": ctx.tau,
        "difficulty_mode": ctx.difficulty_mode,
        "outline_selection": ctx.outline_selection,
        "selection": state.get("selection", "none"),
        "selected_version": state.get("selected_version"),
        "outline_versions": len(outlines),
        "outline_versions_valid": sum(1 for v in outlines if v["steps"]),
        "system2_strategy": ctx.system2_strategy,
        "system2_fraction": hard / len(solved) if solved else 0.0,
        "subproblems": [_subproblem_entry(s) for s in subs],
        "by_mode": by_mode(state),
        "fallbacks": fallbacks,
    }
