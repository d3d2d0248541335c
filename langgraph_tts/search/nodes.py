"""Async nodes of the search graph: expand, check_done, score, embed, allocate, vote.

One iteration of DORA's Algorithm 1 is `expand -> check_done -> (score || embed) -> allocate`.
The nodes are methods of `SearchNodes` so that clients can be bound when a graph is built
(`create_search_graph(policy=...)`) and otherwise resolved from the run's context URLs; every
node can also be called directly with a state dict and a `Runtime` in tests.
"""

from __future__ import annotations

import asyncio
import math
import statistics
import time
from collections.abc import Sequence
from typing import Any, Literal

from langchain_core.messages import AIMessage, AnyMessage
from langgraph.runtime import Runtime
from langgraph.types import Overwrite

from ..answers import VoteResult, VoteRule, extract_answer, split_steps, vote
from ..clients.types import (
    ChatMessage,
    EarlyStopPolicy,
    Embedder,
    Generation,
    Policy,
    RewardModel,
    Sample,
    SamplingParams,
    StopTest,
)
from ..errors import ConfigError
from ..grading import Grader, default_grader
from ..ledger import Ledger, add_flops, bounded_generation, empty_ledger, merge_ledgers
from ..prompts import POLICY_SYSTEM_PROMPT, STEP_DELIMITER
from ..resources import Clients, resolve_clients
from ..scores import aggregate
from ..seeds import request_seed
from ..settings import overlay
from ..state import SearchState, TreeNode, count_by_id, path_text
from ..strategies import Frontier, Strategy, get_strategy
from ..strategies.adaptive import decision, next_width, start_width, wanted_width
from ..strategies.pool import get_pool

__all__ = ["KEPT_FINISHES", "SearchNodes", "problem_from", "rollout_budget"]

KEPT_FINISHES = frozenset({"eos", "length", "empty", "token_cap"})
"""Finish reasons whose solutions join the vote (`discarded` and `budget` do not)."""

ROUND_ENDS = frozenset(
    {
        "final_iteration",
        "sampled",
        "budget_reached",
        "no_active_candidates",
        "no_rollouts_allocated",
    }
)
"""Stop reasons that, under adaptive compute, end a round rather than the run."""


def rollout_budget(ctx: Any) -> int:
    """N: rollouts of the first iteration and voters of the answer (one for chain-of-thought)."""
    return get_strategy(ctx.strategy).rollouts(ctx)


def problem_from(state: Any) -> tuple[str, bool]:
    """The text to search and whether it came from `messages` (then the answer goes back).

    `subproblem` (a parent searching part of its problem) wins over `problem`, which wins over
    the last human message.
    """
    for key in ("subproblem", "problem"):
        text = (state.get(key) or "").strip()
        if text:
            return text, False
    for message in reversed(state.get("messages") or []):
        if getattr(message, "type", None) == "human":
            return _message_text(message).strip(), True
    return "", False


def _message_text(message: AnyMessage) -> str:
    content = message.content
    if isinstance(content, str):
        return content
    return "".join(
        part.get("text", "") if isinstance(part, dict) else str(part) for part in content
    )


def _policy_delta(ctx: Any, samples: int, usage: Any) -> Ledger:
    delta = Ledger(
        policy_requests=usage.requests,
        samples=samples,
        prompt_tokens=usage.prompt_tokens,
        completion_tokens=usage.completion_tokens,
    )
    return add_flops(delta, ctx.policy_params_b, usage.prompt_tokens + usage.completion_tokens)


def _cancel_delta(gen: Generation, nodes: list[TreeNode]) -> Ledger:
    """The ledger's cancellation counters for a request stopped early.

    `saved_tokens_est` is an ESTIMATE: choices decode in lockstep, so each cancelled one had
    generated about t = cancelled_tokens / cancelled tokens; its full length is taken as the
    median length of the run's earlier finished solutions longer than t (t itself when there
    are none, i.e. nothing saved). It leans low: the long solutions a stopped round cuts
    are the ones least often seen finished.
    """
    t = gen.cancelled_tokens / max(gen.cancelled, 1)
    longer = [n["tokens"] for n in nodes if n["finish"] in KEPT_FINISHES and n["tokens"] > t]
    full = float(statistics.median(longer)) if longer else t
    return Ledger(
        cancelled=gen.cancelled,
        cancelled_tokens=gen.cancelled_tokens,
        saved_tokens_est=round(gen.cancelled * (full - t)),
    )


def _root(rollouts: int) -> TreeNode:
    return TreeNode(
        id=0,
        parent=None,
        depth=0,
        iteration=-1,
        text="",
        tokens=0,
        total_tokens=0,
        finish=None,
        score=None,
        step_scores=None,
        gamma=None,
        weight=None,
        rollouts=rollouts,
        group=0,
        answer=None,
        outcome="step",
    )


class SearchNodes:
    """The search graph's nodes, bound to optional clients and the graph's settings.

    Args:
        policy: Policy client; if not given, resolved from each run's `base_url`.
        reward: Reward model; if not given, resolved from `prm_url` (else a generative
            verifier).
        embedder: Embedder for DORA; if not given, resolved from `embed_url`.
        grader: Answer-equivalence grader of the vote.
        defaults: The graph's bound settings (an instance of its context schema).

    Examples:
        The nodes are async functions `(state, runtime) -> update`; wire them yourself, here
        without the loop, which whole-solution strategies (best-of-N) do not need:

        >>> import asyncio
        >>> from langgraph.graph import START, StateGraph
        >>> from langgraph_tts import SearchContext, SearchState
        >>> from langgraph_tts.sim.inprocess import SimPolicy, SimPRM
        >>> from langgraph_tts.sim.server import SimConfig
        >>> world = SimConfig(seed=2)
        >>> nodes = SearchNodes(policy=SimPolicy(world), reward=SimPRM(world))
        >>> names = ("init", "expand", "check_done", "score", "allocate", "vote")
        >>> builder = StateGraph(SearchState, context_schema=SearchContext)
        >>> builder = builder.add_sequence([(n, getattr(nodes, n)) for n in names])
        >>> graph = builder.add_edge(START, "init").compile()
        >>> ctx = SearchContext(strategy="best_of_n", budget=4, seed=0)
        >>> out = asyncio.run(graph.ainvoke({"problem": "What is 7 times 6?"}, context=ctx))
        >>> out["answer"], out["completed"]
        ('720', [1, 2, 3, 4])

        `examples/custom_graph.py` adds a node to the full loop.
    """

    def __init__(
        self,
        *,
        policy: Policy | None = None,
        reward: RewardModel | None = None,
        embedder: Embedder | None = None,
        grader: Grader | None = None,
        defaults: Any = None,
    ) -> None:
        from ..context import SearchContext

        self.policy = policy
        self.reward = reward
        self.embedder = embedder
        self.grader = grader
        self.defaults = defaults if defaults is not None else SearchContext()

    # --- helpers -----------------------------------------------------------------------------

    def context(self, runtime: Runtime[Any] | None, state: Any = None) -> Any:
        """The run's settings: bound ones, then the run's context, then the state's `settings`."""
        ctx = runtime.context if runtime is not None else None
        per_call = (state or {}).get("settings")
        resolved = overlay(self.defaults, ctx, per_call or {}, strict=True)
        rounds = (state or {}).get("adaptive") or {}
        if resolved.adaptive and rounds:
            # adaptive compute: the strategy sees the current round's width as its N
            return resolved.model_copy(update={"budget": int(rounds["width"])})
        return resolved

    def clients(self, ctx: Any) -> Clients:
        return resolve_clients(
            ctx,
            policy=self.policy,
            reward=self.reward,
            embedder=self.embedder,
            need_embedder=get_strategy(ctx.strategy).needs_embeddings,
        )

    def _last_iteration(self, spec: Strategy, ctx: Any, state: Any) -> bool:
        """Whether this is the run's (an adaptive round's) last iteration."""
        start = (state.get("adaptive") or {}).get("round_start", 0)
        return spec.kind == "sample" or state["iteration"] - start >= ctx.max_iterations - 1

    # --- nodes -------------------------------------------------------------------------------

    async def init(self, state: SearchState, runtime: Runtime[Any]) -> dict[str, Any]:
        """Check the input and plant the root: N copies of the empty solution."""
        ctx = self.context(runtime, state)
        question, reply = problem_from(state)
        if not question:
            msg = (
                "no problem to solve: pass {'problem': '...'} or chat messages ending with a "
                "human message"
            )
            raise ConfigError(msg)
        spec = get_strategy(ctx.strategy)
        if spec.kind == "graph":
            msg = f"strategy {ctx.strategy!r} is not a search strategy (use its own graph)"
            raise ConfigError(msg)
        spec.validate(ctx)
        n = spec.rollouts(ctx)
        rounds: dict[str, Any] = {}
        if ctx.adaptive and ctx.adaptive_pool:
            get_pool(ctx.adaptive_pool)  # fails now, before anything is spent
        if ctx.adaptive and n > 1:
            width = start_width(ctx, spec.min_rollouts(ctx))
            rounds = {
                "budget": int(ctx.budget),
                "rollouts": n,
                "width": width,
                "widths": [width],
                "round": 0,
                "round_start": 0,
                "round_done0": 0,
                "samples0": 0,
                "reference": None,
                "allowance": None,
                "confidence": None,
                "stop": "",
            }
            n = spec.rollouts(ctx.model_copy(update={"budget": width}))
        return {
            "question": question,
            "reply": reply,
            "nodes": Overwrite([_root(n)]),
            "completed": Overwrite([]),
            "frontier": [0] * n,
            "new": [],
            "iteration": 0,
            "done": False,
            "stop_reason": "",
            "embeddings": {},
            "verifier": "none",
            "adaptive": rounds,
            "ledger": Overwrite(empty_ledger()),
            "started_at": time.time(),
            "answer": None,
            "result": {},
        }

    async def expand(self, state: SearchState, runtime: Runtime[Any]) -> dict[str, Any]:
        """One step (or the rest of the solution) for every frontier entry.

        Copies of one prefix are drawn with ONE request and `n` = number of copies.
        """
        ctx = self.context(runtime, state)
        spec = get_strategy(ctx.strategy)
        policy = self.clients(ctx).policy
        nodes, it = state["nodes"], state["iteration"]
        last = self._last_iteration(spec, ctx, state)
        thinking = None if ctx.thinking is None else {"enable_thinking": ctx.thinking}
        counts = _apply_sample_cap(
            count_by_id(state["frontier"]), _sample_cap(ctx, state), state.get("ledger", {})
        )
        token_room = _token_room(ctx, state.get("ledger", {}))
        # the hard token cap is shared by every sample of this iteration
        allowance = None if token_room is None else token_room // max(sum(counts.values()), 1)
        stop = self._stop_test(ctx, spec, state, policy)
        jobs, plan = [], []
        for nid, copies in counts.items():
            used = nodes[nid]["total_tokens"]
            room = ctx.max_total_tokens - used
            max_tokens = room if last else min(ctx.max_step_tokens, room)
            if allowance is not None:
                max_tokens = min(max_tokens, allowance)
            if max_tokens <= 0:
                continue
            prefix = path_text(nodes, nid)
            messages: list[ChatMessage] = [
                {"role": "system", "content": POLICY_SYSTEM_PROMPT},
                {"role": "user", "content": state["question"]},
            ]
            if prefix:
                messages.append({"role": "assistant", "content": prefix})
            params = SamplingParams(
                temperature=ctx.temperature,
                top_p=ctx.top_p,
                top_k=ctx.top_k,
                seed=request_seed(ctx.seed, state["question"], it, nid, n=copies),
                max_tokens=max_tokens,
                stop=None if last else (STEP_DELIMITER,),
                chat_template_kwargs=thinking,
            )
            if stop is not None and isinstance(policy, EarlyStopPolicy):
                job = policy.generate_until(
                    messages,
                    n=copies,
                    stop=stop,
                    params=params,
                    continue_final_message=bool(prefix),
                )
            else:
                job = policy.generate(
                    messages, n=copies, params=params, continue_final_message=bool(prefix)
                )
            jobs.append(job)
            plan.append((nid, copies, max_tokens))
        generations = await asyncio.gather(*jobs)
        new_nodes: list[TreeNode] = []
        delta: Ledger = {}
        next_id = len(nodes)
        for (nid, copies, max_tokens), reply in zip(plan, generations, strict=True):
            gen = bounded_generation(reply, n=copies, max_tokens=max_tokens)  # hostile servers
            parent = nodes[nid]
            for j, sample in enumerate(gen.samples):
                group = parent["group"]
                if nid == 0:
                    group = spec.root_group(j, ctx)
                outcome: Literal["step", "eos", "length"] = (
                    "eos" if sample.ended_solution else "length" if sample.truncated else "step"
                )
                new_nodes.append(
                    TreeNode(
                        id=next_id,
                        parent=nid,
                        depth=parent["depth"] + 1,
                        iteration=it,
                        text=sample.text,
                        tokens=sample.tokens,
                        total_tokens=parent["total_tokens"] + sample.tokens,
                        finish=None,
                        score=None,
                        step_scores=None,
                        gamma=None,
                        weight=None,
                        rollouts=0,
                        group=group,
                        answer=None,
                        outcome=outcome,
                    )
                )
                next_id += 1
            delta = merge_ledgers(delta, _policy_delta(ctx, len(gen.samples), gen.usage))
            if gen.cancelled:
                delta = merge_ledgers(delta, _cancel_delta(gen, nodes))
        return {"nodes": new_nodes, "new": [n["id"] for n in new_nodes], "ledger": delta}

    def _stop_test(self, ctx: Any, spec: Strategy, state: Any, policy: Policy) -> StopTest | None:
        """The in-round stopping test of an adaptive majority-vote round, or None.

        Early-stopping self-consistency: while a round streams, the Beta test of the rule
        runs on every finished solution so far (earlier rounds' and this round's) each time
        one more finishes; once it decides, the request is closed and the unfinished
        choices are cancelled. Only for whole-solution strategies voting by counts (a
        PRM-weighted vote needs scores the stream does not have) and policies that can stop
        a request (`EarlyStopPolicy`).
        """
        rounds = state.get("adaptive") or {}
        if not (rounds and ctx.adaptive_cancel and spec.kind == "sample"):
            return None
        if spec.vote_rule(ctx) != "majority" or not isinstance(policy, EarlyStopPolicy):
            return None
        nodes = state["nodes"]
        earlier = [nodes[i]["answer"] for i in state.get("completed", [])]
        confidence = float(ctx.adaptive_confidence)

        def decided(finished: Sequence[Sample]) -> bool:
            answers = earlier + [
                extract_answer(s.text) if s.text.strip() else None for s in finished
            ]
            return decision(answers, None, confidence=confidence).decided

        return decided

    async def check_done(self, state: SearchState, runtime: Runtime[Any]) -> dict[str, Any]:
        """Mark finished candidates and decide whether the search stops after this iteration."""
        ctx = self.context(runtime, state)
        spec = get_strategy(ctx.strategy)
        nodes = state["nodes"]
        last = self._last_iteration(spec, ctx, state)
        updates: list[TreeNode] = []
        completed: list[int] = []
        active = 0
        for nid in state["new"]:
            node = nodes[nid]
            finish = _finish_reason(node, ctx, last)
            if finish is None:
                active += 1
                continue
            update: dict[str, Any] = {"id": nid, "finish": finish}
            if finish in KEPT_FINISHES:
                update["answer"] = extract_answer(path_text(nodes, nid))
                completed.append(nid)
            updates.append(update)  # type: ignore[arg-type]
        round_done0 = (state.get("adaptive") or {}).get("round_done0", 0)
        n_done = len(state.get("completed", [])) - round_done0 + len(completed)
        budget = spec.rollouts(ctx)
        stop = ""
        if last:
            stop = "final_iteration" if spec.kind == "search" else "sampled"
        elif ctx.stop_at_budget and n_done >= budget:
            stop = "budget_reached"
        elif active == 0:
            stop = "no_active_candidates"
        elif _caps_exhausted(ctx, state.get("ledger", {}), _sample_cap(ctx, state)):
            stop = "hard_cap"
        if not state["new"] and not stop:
            stop = "hard_cap"
        return {"nodes": updates, "completed": completed, "done": bool(stop), "stop_reason": stop}

    async def score(self, state: SearchState, runtime: Runtime[Any]) -> dict[str, Any]:
        """PRM rewards for the new candidates that still matter, in one batched call.

        Finished solutions are scored for the vote; active ones only if the search goes on.
        """
        ctx = self.context(runtime, state)
        if not get_strategy(ctx.strategy).needs_prm:
            return {"verifier": "none"}
        nodes = state["nodes"]
        ids, steps = [], []
        for nid in state["new"]:
            node = nodes[nid]
            if node["finish"] in ("discarded", "budget") or (state["done"] and not node["finish"]):
                continue
            pieces = split_steps(path_text(nodes, nid), STEP_DELIMITER)
            if pieces:
                ids.append(nid)
                steps.append(pieces)
        if not ids:
            return {}
        clients = self.clients(ctx)
        scores = await clients.reward.score(state["question"], steps)
        updates = [
            {"id": nid, "step_scores": list(s), "score": aggregate(s, ctx.aggregation)}
            for nid, s in zip(ids, scores.step_scores, strict=True)
        ]
        usage = scores.usage
        if clients.verifier == "prm":
            delta = Ledger(
                prm_requests=usage.requests, prm_scored=len(ids), prm_tokens=usage.total_tokens
            )
            add_flops(delta, ctx.prm_params_b, usage.total_tokens)
        else:
            delta = Ledger(verifier_requests=usage.requests, verifier_tokens=usage.total_tokens)
            add_flops(delta, ctx.policy_params_b, usage.total_tokens)
        return {"nodes": updates, "ledger": delta, "verifier": clients.verifier}

    async def embed(self, state: SearchState, runtime: Runtime[Any]) -> dict[str, Any]:
        """Embeddings of the active candidates' partial solutions (DORA only), one request."""
        ctx = self.context(runtime, state)
        if not get_strategy(ctx.strategy).needs_embeddings or state["done"]:
            return {}
        nodes = state["nodes"]
        active = [nid for nid in state["new"] if nodes[nid]["finish"] is None]
        if len(active) < 2:
            return {"embeddings": {}}
        embedder = self.clients(ctx).embedder
        assert embedder is not None
        result = await embedder.embed([path_text(nodes, nid) for nid in active])
        usage = result.usage
        delta = Ledger(embed_requests=usage.requests, embed_tokens=usage.total_tokens)
        add_flops(delta, ctx.embed_params_b, usage.total_tokens)
        vectors = {str(nid): list(v) for nid, v in zip(active, result.vectors, strict=True)}
        return {"embeddings": vectors, "ledger": delta}

    async def allocate(self, state: SearchState, runtime: Runtime[Any]) -> dict[str, Any]:
        """Turn scores (and embeddings) into next iteration's rollouts; stream the decision.

        Under adaptive compute, the end of a round runs the stopping test instead of ending
        the run: decided, or the allowance spent, stops; otherwise a wider round starts from
        the root.
        """
        ctx = self.context(runtime, state)
        nodes, it = state["nodes"], state["iteration"]
        updates: list[dict[str, Any]] = []
        frontier: list[int] = []
        done, stop_reason = state["done"], state.get("stop_reason", "")
        ledger = state.get("ledger", {})
        rounds = dict(state.get("adaptive") or {})
        if not done:
            active = [nid for nid in state["new"] if nodes[nid]["finish"] is None]
            rows = _allocate(ctx, nodes, state["new"], active, state.get("embeddings", {}))
            for nid, count, weight, gamma in rows:
                updates.append({"id": nid, "rollouts": count, "weight": weight, "gamma": gamma})
                frontier.extend([nid] * count)
            if not frontier:
                done, stop_reason = True, "no_rollouts_allocated"
        if done and rounds:
            rounds, round_event = _end_round(ctx, state, rounds, stop_reason)
            runtime.stream_writer(round_event)
            if rounds["stop"]:
                stop_reason = rounds["stop"]
            else:
                done, stop_reason = False, ""
                frontier = [0] * get_strategy(ctx.strategy).rollouts(
                    ctx.model_copy(update={"budget": rounds["width"]})
                )
        event: dict[str, Any] = {
            "event": "iteration",
            "iteration": it,
            "active": sum(1 for nid in state["new"] if nodes[nid]["finish"] is None),
            "finished": len(state.get("completed", [])),
            "rollouts": {str(u["id"]): u["rollouts"] for u in updates if u["rollouts"]},
            "subtrees": _rollouts_by_group(nodes, updates),
            "completion_tokens": ledger.get("completion_tokens", 0),
            "samples": ledger.get("samples", 0),
            "done": done,
            "stop_reason": stop_reason,
        }
        ran = state.get("adaptive") or {}
        if ran:  # the round this iteration belongs to
            event["round"] = ran["round"]
            event["width"] = ran["width"]
        runtime.stream_writer(event)
        out: dict[str, Any] = {"nodes": updates, "iteration": it + 1, "frontier": frontier}
        if done != state["done"] or stop_reason != state.get("stop_reason", ""):
            out.update(done=done, stop_reason=stop_reason)
        if rounds:
            out["adaptive"] = rounds
        return out

    async def vote(self, state: SearchState, runtime: Runtime[Any]) -> dict[str, Any]:
        """Final answer from the first N finished solutions (PRM-weighted vote by default)."""
        ctx = self.context(runtime, state)
        spec = get_strategy(ctx.strategy)
        nodes = state["nodes"]
        rounds = state.get("adaptive") or {}
        final = state.get("completed", [])
        if not rounds:  # fixed N: the first N finished solutions vote; adaptive: all of them
            final = final[: spec.rollouts(ctx)]
        result = await cast_vote(
            [nodes[i]["answer"] for i in final],
            [nodes[i]["score"] for i in final],
            spec.vote_rule(ctx),
            self.grader or default_grader(),
        )
        winner = final[result.winner] if result.winner is not None else None
        summary = {
            "answer": result.answer,
            "strategy": ctx.strategy,
            "budget": rounds.get("budget", ctx.budget),
            "vote": result.rule,
            "verifier": state.get("verifier", "none"),
            "winner": winner,
            "voters": len(final),
            "finished": len(state.get("completed", [])),
            "iterations": state["iteration"],
            "stop_reason": state.get("stop_reason", ""),
            "groups": vote_groups(result),
        }
        if winner is not None:
            summary["solution"] = path_text(nodes, winner)
            summary["finish_reason"] = nodes[winner]["finish"]
        wall = Ledger(wall_s=time.time() - state.get("started_at", time.time()))
        if rounds:
            report = _adaptive_report(rounds, state.get("ledger") or {})
            summary["adaptive"] = report
            if rounds.get("allowance") is not None:
                wall["budget_samples"] = int(rounds["allowance"])
            if ctx.adaptive_pool and report["reference"] is not None:
                # pay the savings (or the loan) back into the cross-problem pool
                report["pool"] = ctx.adaptive_pool
                get_pool(ctx.adaptive_pool).settle(
                    spent=report["samples"] + report["cancelled"],
                    reference=report["reference"],
                    borrowed=report["borrowed"],
                )
        summary["ledger"] = merge_ledgers(state.get("ledger") or {}, wall)
        out: dict[str, Any] = {"answer": result.answer, "result": summary, "ledger": wall}
        if state.get("reply"):
            out["messages"] = [answer_message(result.answer, summary)]
        return out


# --- pure helpers -----------------------------------------------------------------------------


def _finish_reason(node: TreeNode, ctx: Any, last: bool) -> str | None:
    outcome = node["outcome"]
    if not node["text"].strip():
        return "empty"
    if outcome == "eos":
        return "eos"
    if outcome == "length":
        if last:
            return "length"
        if node["total_tokens"] >= ctx.max_total_tokens:
            return "token_cap"
        if ctx.discard_truncated_steps and node["tokens"] >= ctx.max_step_tokens:
            return "discarded"
        return "length"
    if last:
        return "length"
    if node["total_tokens"] >= ctx.max_total_tokens:
        return "token_cap"
    return None


def _sample_cap(ctx: Any, state: Any) -> int | None:
    """Hard cap on the run's samples: `max_samples`, and an adaptive run's allowance."""
    caps = [ctx.max_samples, (state.get("adaptive") or {}).get("allowance")]
    known = [int(c) for c in caps if c is not None]
    return min(known) if known else None


def _apply_sample_cap(counts: dict[int, int], cap: int | None, ledger: Ledger) -> dict[int, int]:
    if cap is None:
        return counts
    room = cap - _drawn(ledger)
    out: dict[int, int] = {}
    for nid, k in counts.items():
        take = min(k, room)
        if take <= 0:
            break
        out[nid] = take
        room -= take
    return out


def _token_room(ctx: Any, ledger: Ledger) -> int | None:
    if ctx.max_tokens_cap is None:
        return None
    return max(0, ctx.max_tokens_cap - ledger.get("completion_tokens", 0))


def _drawn(ledger: Ledger) -> int:
    """Choices drawn: the samples, and the choices cancelled unfinished (the hard caps and
    the adaptive allowance count both, so stopping a stream early never lets a run draw
    more choices than a fixed run would be allowed)."""
    return int(ledger.get("samples", 0)) + int(ledger.get("cancelled", 0))


def _caps_exhausted(ctx: Any, ledger: Ledger, sample_cap: int | None) -> bool:
    if sample_cap is not None and _drawn(ledger) >= sample_cap:
        return True
    room = _token_room(ctx, ledger)
    return room is not None and room <= 0


def _end_round(
    ctx: Any, state: Any, rounds: dict[str, Any], stop_reason: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Adaptive compute at the end of a round: (the new bookkeeping, the stream event).

    `rounds["stop"]` is set ("decided", "budget", "hard_cap") when the run ends here;
    otherwise `rounds` describes the next, wider round.
    """
    spec = get_strategy(ctx.strategy)
    nodes = state["nodes"]
    completed = state.get("completed", [])
    spent = _drawn(state.get("ledger", {}))
    answers = [nodes[i]["answer"] for i in completed]
    scores: list[float] | None = [float(nodes[i]["score"] or 0.0) for i in completed]
    if spec.vote_rule(ctx) == "majority" or any(nodes[i]["score"] is None for i in completed):
        scores = None
    test = decision(answers, scores, confidence=ctx.adaptive_confidence)
    out = dict(rounds)
    widths = list(out["widths"])
    cost_per_width = spent / max(sum(widths), 1)  # samples per unit of width, so far
    if out["reference"] is None:  # end of round 0: what fixed N would have drawn
        reference = cost_per_width * int(out["rollouts"])
        if ctx.adaptive_credit is not None:
            credit = float(ctx.adaptive_credit)
        else:  # a pool lends as the run goes; alone, a run may draw up to cap x its reference
            credit = 0.0 if ctx.adaptive_pool else (ctx.adaptive_cap - 1.0) * reference
        out["reference"] = round(reference, 3)
        out["allowance"] = max(spent, math.floor(reference + credit))
    out["confidence"] = round(test.confidence, 6)
    out["leader"] = test.leader
    out["weights"] = [round(w, 6) for w in test.weights]
    width = 0
    limit = float(out["allowance"])
    if ctx.max_samples is not None:
        limit = min(limit, float(ctx.max_samples))
    if test.decided:
        out["stop"] = "decided"
    elif stop_reason not in ROUND_ENDS:
        out["stop"] = stop_reason or "hard_cap"
    elif spent <= int(rounds["samples0"]) or _caps_exhausted(ctx, state.get("ledger", {}), None):
        out["stop"] = "hard_cap"  # the round drew nothing, or a hard cap is spent
    else:
        if ctx.adaptive_pool:  # borrow what the next, wider round lacks
            want = wanted_width(ctx, int(out["width"]))
            ceiling = ctx.adaptive_cap * float(out["reference"])  # at most cap x the reference
            short = min(want * cost_per_width, ceiling) - (limit - spent)
            if short > 0 and limit < ceiling:
                got = get_pool(ctx.adaptive_pool).borrow(min(short, ceiling - limit))
                out["borrowed"] = int(out.get("borrowed", 0)) + got
                out["allowance"] = int(out["allowance"]) + got
                limit += got
        width = next_width(
            ctx,
            width=int(out["width"]),
            spent=spent,
            allowance=limit,
            cost_per_width=cost_per_width,
            minimum=spec.min_rollouts(ctx),
        )
        out["stop"] = "" if width else "budget"
    if width:
        out.update(
            round=int(out["round"]) + 1,
            width=width,
            widths=[*widths, width],
            round_start=int(state["iteration"]) + 1,
            round_done0=len(completed),
            samples0=spent,
        )
    event = {
        "event": "adaptive",
        "round": rounds["round"],
        "width": rounds["width"],
        "next_width": width,
        "finished": len(completed),
        "samples": spent,
        "reference": out["reference"],
        "allowance": out["allowance"],
        "confidence": out["confidence"],
        "leader": test.leader,
        "weights": out["weights"],
        "decision": out["stop"] or "continue",
    }
    return out, event


def _adaptive_report(rounds: dict[str, Any], ledger: Ledger) -> dict[str, Any]:
    """What `result["adaptive"]` shows: N, the widths, the allowance and why the run stopped."""
    return {
        "budget": rounds["budget"],
        "widths": list(rounds["widths"]),
        "rounds": len(rounds["widths"]),
        "reference": rounds.get("reference"),
        "allowance": rounds.get("allowance"),
        "borrowed": rounds.get("borrowed", 0),
        "samples": int(ledger.get("samples", 0)),
        "cancelled": int(ledger.get("cancelled", 0)),
        "confidence": rounds.get("confidence"),
        "weights": rounds.get("weights"),
        "stop": rounds.get("stop", ""),
    }


def _allocate(
    ctx: Any,
    nodes: list[TreeNode],
    new: list[int],
    active: list[int],
    embeddings: dict[str, list[float]],
) -> list[tuple[int, int, float | None, float | None]]:
    """Run the strategy's allocation rule: (node id, rollouts, weight, γ) per candidate."""
    spec = get_strategy(ctx.strategy)
    ids = spec.candidates(nodes, new, active) if active else []
    if not ids:
        return []
    frontier = Frontier(
        ids=ids,
        scores=[float(nodes[n]["score"] or 0.0) for n in ids],
        groups=[nodes[n]["group"] for n in ids],
        embeddings=embeddings,
    )
    result = spec.allocate(ctx, frontier)
    gammas: list[float | None] = list(result.gamma) if result.gamma else [None] * len(ids)
    return [
        (nid, count, float(w), None if g is None else float(g))
        for nid, count, w, g in zip(ids, result.counts, result.weights, gammas, strict=True)
    ]


async def cast_vote(
    answers: Sequence[str | None],
    scores: Sequence[float | None],
    rule: VoteRule,
    grader: Grader,
) -> VoteResult:
    """The final vote: `rule` over the `grader`'s answer groups, or plain majority if a voter
    has no score (`VoteResult.rule` says which was applied)."""
    if rule != "majority" and any(score is None for score in scores):
        rule = "majority"
    weights = [float(score or 0.0) for score in scores] if rule != "majority" else None
    return vote(answers, weights, await grader.agroup(answers), rule)


def vote_groups(result: VoteResult) -> list[dict[str, Any]]:
    """The vote's answer groups as a run reports them (best first)."""
    return [
        {"answer": g.answer, "count": g.count, "weight": round(g.weight, 6)} for g in result.groups
    ]


def answer_message(answer: str | None, result: dict[str, Any]) -> AIMessage:
    """The answer as a chat reply; the run's report and ledger go in its metadata."""
    text = f"The answer is $\\boxed{{{answer}}}$." if answer is not None else "No answer found."
    report = {k: v for k, v in result.items() if k not in ("solution", "groups")}
    return AIMessage(
        content=text, response_metadata={"langgraph_tts": report}, name="langgraph_tts"
    )


def _rollouts_by_group(nodes: list[TreeNode], updates: list[dict[str, Any]]) -> dict[str, int]:
    out: dict[str, int] = {}
    for u in updates:
        if u["rollouts"]:
            key = str(nodes[u["id"]]["group"])
            out[key] = out.get(key, 0) + u["rollouts"]
    return out
