"""Async nodes of SCALE: decompose, assess_difficulty, route, solve_system1/2, propagate, finalize.

```
decompose -> assess_difficulty -> route -> solve_system1 | solve_system2 -> propagate
                  ^                                                           |
                  \\------------------- next sub-problem ----------------------/-> finalize
```
The nodes are methods of `ScaleNodes` so that clients can be bound when a graph is built and
otherwise resolved from the run's context URLs. Each one takes a state dict and a
`Runtime[Any]` and returns a state update, so it can be called directly or placed in
a user's own graph. Module-level aliases (`decompose`, `assess_difficulty`, ...) are the nodes
of a `ScaleNodes()` with no bound clients.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from dataclasses import dataclass
from typing import Any, Literal

from langgraph.runtime import Runtime
from langgraph.types import Overwrite

from ..clients.types import ChatMessage, Policy
from ..errors import ConfigError
from ..ledger import Ledger, merge_ledgers
from ..prompts import SOLVE_SUBPROBLEM_SYSTEM_PROMPT, SOLVE_SUBPROBLEM_USER_TEMPLATE
from ..search.nodes import answer_message, problem_from
from ..settings import overlay
from .difficulty import (
    FALLBACK_DIFFICULTY,
    FORCED_LAST_DIFFICULTY,
    NO_CONTEXT,
    assessment_update,
    score_difficulty,
    work_for,
)
from .outline import sample_outlines, select_outline
from .report import NO_ANSWER, build_report, subproblem_answer
from .search import search_settings, searched
from .state import Mode, ScaleState, SubProblem
from .systems import (
    derive_seed,
    policy_delta,
    resolve_system,
    system_params,
)

__all__ = [
    "FALLBACK_DIFFICULTY",
    "FORCED_LAST_DIFFICULTY",
    "NO_ANSWER",
    "NO_CONTEXT",
    "SOLVE_RETRIES",
    "ScaleNodes",
    "route_subproblem",
]

logger = logging.getLogger(__name__)

SOLVE_RETRIES = 1
"""Re-asks of a solver that returned an empty text without hitting its token limit."""


def route_subproblem(difficulty: float, tau: float) -> Mode:
    """System-1 when `difficulty <= tau`, System-2 when `difficulty > tau` (strict, as in the
    SCALE code, so tau = 0.9 with the forced last score 0.9 routes nothing to System-2).
    A NaN difficulty counts as hard.

    Examples:
        >>> route_subproblem(0.7, tau=0.5), route_subproblem(0.5, tau=0.5)
        ('system2', 'system1')
    """
    if math.isnan(difficulty) or difficulty > tau:
        return "system2"
    return "system1"


@dataclass
class _Solved:
    """What a solver produced for one sub-problem."""

    solution: str
    reasoning: str | None
    finish_reason: str | None
    ledger: Ledger
    solver: str
    search: dict[str, Any] | None = None
    answer: str | None = None
    """The answer a search voted for (single samples leave it to extraction)."""


class ScaleNodes:
    """SCALE's own nodes, bound to optional clients and the graph's settings.

    Args:
        policy: Default client of both systems.
        system1: Client of System-1 (and of decompose, select and difficulty).
        system2: Client of System-2.
        defaults: The graph's bound settings (an instance of its context schema).

    Examples:
        A node called on its own (no runtime: the bound settings apply):

        >>> import asyncio
        >>> from langgraph_tts import ScaleContext
        >>> from langgraph_tts.sim.inprocess import SimPolicy
        >>> from langgraph_tts.sim.server import SimConfig
        >>> nodes = ScaleNodes(policy=SimPolicy(SimConfig(seed=2)), defaults=ScaleContext(seed=0))
        >>> update = asyncio.run(nodes.decompose({"problem": "What is 7 times 6?"}, None))
        >>> for sub in update["subproblems"].value:  # an Overwrite of the state's list
        ...     print(sub["index"], sub["text"])
        0 Determine the smallest positive solution.
        1 Determine the area of the triangle.
        2 Compute the value of the auxiliary expression from the given data.
        3 What is 7 times 6?
    """

    def __init__(
        self,
        *,
        policy: Policy | None = None,
        system1: Policy | None = None,
        system2: Policy | None = None,
        defaults: Any = None,
    ) -> None:
        self.policy = policy
        self.system1 = system1
        self.system2 = system2
        self._defaults = defaults

    # --- helpers -----------------------------------------------------------------------------

    @property
    def defaults(self) -> Any:
        """Bound settings (built on first use when none were given: they read the environment)."""
        if self._defaults is None:
            from ..context import ScaleContext

            self._defaults = ScaleContext()
        return self._defaults

    def context(self, runtime: Runtime[Any] | None, state: Any = None) -> Any:
        """Bound settings, then the run's context, then the input's per-call `settings`."""
        ctx = runtime.context if runtime is not None else None
        per_call = (state or {}).get("user_settings") or {}
        return overlay(self.defaults, ctx, per_call, strict=True)

    def client(self, ctx: Any, mode: Mode) -> Policy:
        """The policy of System-1 or System-2 for this run."""
        bound = self.system1 if mode == "system1" else self.system2
        return resolve_system(ctx, mode, bound=bound, default=self.policy)

    # --- nodes -------------------------------------------------------------------------------

    async def decompose(self, state: ScaleState, runtime: Runtime[Any]) -> dict[str, Any]:
        """Sample `outline_versions` outlines concurrently, choose one, end it with the question.

        Without any valid outline the whole problem becomes one System-2 sub-problem.
        """
        user = dict(state.get("settings") or {})
        ctx = self.context(runtime, {"user_settings": user})
        problem, reply = problem_from(state)
        if not problem:
            raise ConfigError("no problem to solve: pass {'problem': '...'} or chat messages")
        conditions = (state.get("conditions") or "").strip() or problem
        question = (state.get("question") or "").strip() or problem
        policy = self.client(ctx, "system1")
        versions, spent = await sample_outlines(policy, ctx, problem)
        selection = await select_outline(policy, ctx, problem, versions)
        overhead = merge_ledgers(spent, selection.ledger)
        fallbacks = list(selection.fallbacks)
        chosen = selection.version
        if chosen is None or not chosen["steps"]:
            last_error = next((v["error"] for v in reversed(versions) if v["error"]), "unknown")
            fallbacks.append(
                f"decompose: none of {len(versions)} outline versions was valid after "
                f"{ctx.format_retries + 1} attempts each (last error: {last_error}); solved "
                "the whole problem as one System-2 sub-problem"
            )
            subs = [_subproblem(0, question, FALLBACK_DIFFICULTY, "whole_problem", "system2")]
        else:
            steps = [*chosen["steps"][:-1], question]
            subs = [_subproblem(i, text) for i, text in enumerate(steps)]
        logger.debug("decompose: %d sub-problems via %s", len(subs), selection.method)
        return {
            "problem": problem,
            "reply": reply,
            "user_settings": user,
            "conditions": conditions,
            "question": question,
            "outlines": versions,
            "selected_version": chosen["version"] if chosen else None,
            "selection": selection.method,
            "subproblems": Overwrite(subs),
            "current": 0,
            "context": [],
            "fallbacks": Overwrite(fallbacks),
            "overhead": Overwrite(overhead),
            "ledger": Overwrite(dict(overhead)),
            "started_at": time.time(),
            "answer": None,
            "result": {},
        }

    async def assess_difficulty(self, state: ScaleState, runtime: Runtime[Any]) -> dict[str, Any]:
        """Score the current sub-problem (sequential) or all of them at once (upfront).

        Sequential (paper): the model sees earlier sub-problems with their answers. Upfront
        (SCALE code): each sub-problem is scored from the descriptions before it, concurrently,
        on the first visit. Already-scored sub-problems are skipped, so this node is a no-op
        after the upfront pass and for fallback sub-problems.
        """
        ctx = self.context(runtime, state)
        subs, current = state["subproblems"], state.get("current", 0)
        if ctx.difficulty_mode == "upfront":
            targets = [s["index"] for s in subs if s.get("difficulty") is None]
        else:
            targets = [current] if subs[current].get("difficulty") is None else []
        if not targets:
            return {}
        policy = self.client(ctx, "system1")
        forced = {len(subs) - 1} if ctx.force_last_hard else set()
        asked = [idx for idx in targets if idx not in forced]
        outcomes = await asyncio.gather(
            *(
                score_difficulty(
                    policy, ctx, state["problem"], work_for(ctx, state, i), subs[i]["text"], i
                )
                for i in asked
            )
        )
        by_index = dict(zip(asked, outcomes, strict=True))
        updates: list[SubProblem] = []
        notes: list[str] = []
        overhead: Ledger = {}
        for idx in targets:
            outcome = by_index.get(idx)
            update, note = assessment_update(idx, outcome)
            updates.append(update)
            notes.extend([note] if note else [])
            overhead = merge_ledgers(overhead, outcome.ledger if outcome else {})
        return {
            "subproblems": updates,
            "overhead": overhead,
            "ledger": overhead,
            "fallbacks": notes,
        }

    def route(self, state: ScaleState, runtime: Runtime[Any]) -> str:
        """Conditional edge: `system1`, `system2` (one sample) or `search` (System-2 search)."""
        ctx = self.context(runtime, state)
        sub = state["subproblems"][state.get("current", 0)]
        mode = sub.get("forced_mode")
        if not mode:
            difficulty = sub.get("difficulty")
            score = FALLBACK_DIFFICULTY if difficulty is None else difficulty
            mode = route_subproblem(score, ctx.tau)
        if mode == "system2" and ctx.system2_strategy != "single":
            return "search"
        return mode

    async def prepare_search(self, state: ScaleState, runtime: Runtime[Any]) -> dict[str, Any]:
        """Hand the current sub-problem to the System-2 search subgraph."""
        ctx = self.context(runtime, state)
        idx = state.get("current", 0)
        settings = search_settings(ctx, state["problem"], idx)
        return {"subproblem": _prompt(state, idx), "settings": settings}

    async def collect_search(self, state: ScaleState, runtime: Runtime[Any]) -> dict[str, Any]:
        """Record the search's winner as the sub-problem's solution (its spend is booked)."""
        ctx = self.context(runtime, state)
        idx = state.get("current", 0)
        result = dict(state.get("result") or {})
        solution, finish, ledger, answer = searched(result)
        done = _Solved(solution, None, finish, ledger, ctx.system2_strategy, result, answer)
        update = _record(idx, "system2", done)
        return {"subproblems": [update], "fallbacks": update.pop("notes")}

    async def solve_system1(self, state: ScaleState, runtime: Runtime[Any]) -> dict[str, Any]:
        """Solve the current sub-problem fast: one non-thinking sample."""
        return await self._solve(state, self.context(runtime, state), "system1")

    async def solve_system2(self, state: ScaleState, runtime: Runtime[Any]) -> dict[str, Any]:
        """Solve the current sub-problem slowly: one thinking sample, or `system2_strategy`."""
        return await self._solve(state, self.context(runtime, state), "system2")

    async def _solve(self, state: ScaleState, ctx: Any, mode: Mode) -> dict[str, Any]:
        idx = state.get("current", 0)
        done = await self._single(ctx, mode, self.client(ctx, mode), _prompt(state, idx), idx)
        update = _record(idx, mode, done)
        return {"subproblems": [update], "ledger": done.ledger, "fallbacks": update.pop("notes")}

    async def _single(self, ctx: Any, mode: Mode, policy: Policy, prompt: str, idx: int) -> _Solved:
        """One sample; re-asked (at most `SOLVE_RETRIES` times) only if it came back empty."""
        messages: list[ChatMessage] = [
            {"role": "system", "content": SOLVE_SUBPROBLEM_SYSTEM_PROMPT},
            {"role": "user", "content": prompt},
        ]
        spent: Ledger = {}
        sample = None
        for attempt in range(SOLVE_RETRIES + 1):
            params = system_params(ctx, mode, seed=derive_seed(ctx, prompt, 4, idx, attempt))
            gen = await policy.generate(messages, n=1, params=params)
            spent = merge_ledgers(spent, policy_delta(ctx, gen, mode))
            sample = gen.samples[0]
            if sample.text.strip() or sample.truncated:
                break
        assert sample is not None
        return _Solved(sample.text, sample.reasoning, sample.finish_reason, spent, "single")

    async def propagate(self, state: ScaleState, runtime: Runtime[Any]) -> dict[str, Any]:
        """Add the solved sub-problem and its answer to the work the next ones see; stream it."""
        idx = state.get("current", 0)
        sub = state["subproblems"][idx]
        item = f"{sub['text']}\nstep answer: {sub.get('answer') or NO_ANSWER}"
        runtime.stream_writer(
            {
                "event": "subproblem",
                "index": idx,
                "of": len(state["subproblems"]),
                "difficulty": sub.get("difficulty"),
                "mode": sub.get("mode"),
                "answer": sub.get("answer"),
                "tokens": sub.get("tokens", 0),
                "tokens_so_far": state.get("ledger", {}).get("completion_tokens", 0),
            }
        )
        return {"context": [*state.get("context", []), item], "current": idx + 1}

    def next_step(self, state: ScaleState) -> Literal["assess_difficulty", "finalize"]:
        """Conditional edge after `propagate`: the next sub-problem, or the end."""
        if state.get("current", 0) < len(state["subproblems"]):
            return "assess_difficulty"
        return "finalize"

    async def finalize(self, state: ScaleState, runtime: Runtime[Any]) -> dict[str, Any]:
        """The answer of the last sub-problem, and the run's report."""
        ctx = self.context(runtime, state)
        subs = state["subproblems"]
        answer = subs[-1].get("answer") if subs else None
        notes: list[str] = []
        if answer is None:
            earlier = next((s for s in reversed(subs[:-1]) if s.get("answer")), None)
            if earlier is not None:
                answer = earlier["answer"]
                notes.append(
                    "final: the last sub-problem gave no answer; returned the answer of "
                    f"sub-problem {earlier['index']}"
                )
            else:
                notes.append("final: no sub-problem gave an answer; the answer is None")
        wall = Ledger(wall_s=time.time() - state.get("started_at", time.time()))
        result = build_report(ctx, state, answer, [*state.get("fallbacks", []), *notes])
        result["ledger"] = merge_ledgers(state.get("ledger") or {}, wall)
        out: dict[str, Any] = {
            "answer": answer,
            "result": result,
            "fallbacks": notes,
            "ledger": wall,
        }
        if state.get("reply"):
            out["messages"] = [answer_message(answer, result)]
        return out


# --- pure helpers -----------------------------------------------------------------------------


def _prompt(state: ScaleState, idx: int) -> str:
    """The solver's prompt for sub-problem `idx`: conditions, work so far, the sub-problem."""
    return SOLVE_SUBPROBLEM_USER_TEMPLATE.format(
        conditions=state.get("conditions") or state["problem"],
        context="\n".join(state.get("context", [])) or NO_CONTEXT,
        subproblem=state["subproblems"][idx]["text"],
    )


def _record(idx: int, mode: Mode, done: _Solved) -> dict[str, Any]:
    """The sub-problem's update (with `notes`: fallbacks of answer extraction, to pop)."""
    answer: str | None = done.answer
    notes: list[str] = []
    if answer is None:
        answer, notes = subproblem_answer(
            idx, done.solution, reasoning=done.reasoning, finish_reason=done.finish_reason
        )
    ledger = done.ledger
    return {
        "index": idx,
        "mode": mode,
        "solver": done.solver,
        "solution": done.solution,
        "answer": answer,
        "finish_reason": done.finish_reason,
        "tokens": int(ledger.get("completion_tokens", 0)),
        "calls": int(ledger.get("policy_requests", 0)),
        "ledger": ledger,
        "search": done.search,
        "notes": notes,
    }


def _subproblem(
    index: int,
    text: str,
    difficulty: float | None = None,
    source: str | None = None,
    forced: Mode | None = None,
) -> SubProblem:
    record = SubProblem(
        index=index,
        text=text,
        difficulty=difficulty,
        forced_mode=forced,
        mode=None,
        answer=None,
        tokens=0,
        calls=0,
        ledger={},
        difficulty_ledger={},
    )
    if source is not None:
        record["difficulty_source"] = source  # type: ignore[typeddict-item]
    return record
