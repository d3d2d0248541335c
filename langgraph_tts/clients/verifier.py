"""A generative verifier: the policy model judges each candidate with a one-token Yes/No.

Why: step-wise search needs *some* reward when no PRM server is configured. Asking the policy
"is every step so far correct?" and reading P(Yes) from the first token's top logprobs gives a
graded score from a single generated token (the LLM-as-judge fallback optillm and SCALE use).
It is weaker than a trained PRM, and `Scores.source` says which one was used.
"""

from __future__ import annotations

import asyncio
import math
import re
from collections.abc import Sequence
from typing import Any

from langgraph_tts.clients._http import DEFAULT_MAX_CONCURRENCY, run_sync
from langgraph_tts.clients.types import (
    ChatMessage,
    Policy,
    Sample,
    SamplingParams,
    Scores,
    Usage,
)
from langgraph_tts.prompts import VERIFIER_SYSTEM_PROMPT, VERIFIER_USER_TEMPLATE

__all__ = ["DEFAULT_VERIFIER_PARAMS", "GenerativeVerifier", "yes_probability"]

DEFAULT_VERIFIER_PARAMS = SamplingParams(
    temperature=0.0,
    top_p=1.0,
    max_tokens=1,
    logprobs=True,
    top_logprobs=10,
)
"""Greedy, one token, with the 10 most likely first tokens so both Yes and No are seen.
Thinking models (Qwen3) need `chat_template_kwargs={"enable_thinking": False}` on top."""

_FIRST_WORD = re.compile(r"[a-z]+")


class GenerativeVerifier:
    """A `RewardModel` that asks the policy whether each candidate's steps are correct.

    Each candidate gets ONE score, returned as a one-element step list, so `aggregate` works
    the same as for a PRM.

    Args:
        policy: The model that judges (usually the policy that wrote the solutions).
        max_concurrency: Candidates judged at once.
        params: Sampling settings; keep `max_tokens=1` and `logprobs=True` for graded scores.

    Examples:
        Without a PRM, the policy judges its own solutions (the graphs do this when no
        `prm_url` is set):

        >>> from langgraph_tts import create_search_graph
        >>> from langgraph_tts.sim.inprocess import SimPolicy
        >>> from langgraph_tts.sim.server import SimConfig
        >>> policy = SimPolicy(SimConfig(seed=2))
        >>> verifier = GenerativeVerifier(policy)
        >>> graph = create_search_graph("best_of_n", policy=policy, prm=verifier, budget=4, seed=0)
        >>> out = graph.invoke({"problem": "What is 7 times 6?"})
        >>> out["answer"], out["result"]["verifier"], out["ledger"]["verifier_requests"]
        ('720', 'generative_verifier', 4)
    """

    def __init__(
        self,
        policy: Policy,
        *,
        max_concurrency: int = DEFAULT_MAX_CONCURRENCY,
        params: SamplingParams | None = None,
    ) -> None:
        if max_concurrency < 1:
            raise ValueError(f"max_concurrency must be >= 1, got {max_concurrency}")
        self.policy = policy
        self.max_concurrency = max_concurrency
        self.params = params or DEFAULT_VERIFIER_PARAMS

    def __repr__(self) -> str:
        return f"GenerativeVerifier(policy={self.policy!r})"

    async def score(self, problem: str, steps: Sequence[Sequence[str]]) -> Scores:
        """One P(Yes) per candidate, from one request per candidate, run concurrently.

        Raises:
            ValueError: A candidate has no steps.
        """
        for i, candidate in enumerate(steps):
            if isinstance(candidate, str) or not candidate:
                raise ValueError(f"candidate {i} needs a non-empty list of steps")
        semaphore = asyncio.Semaphore(self.max_concurrency)

        async def judge(candidate: Sequence[str]) -> tuple[float, Usage]:
            async with semaphore:
                gen = await self.policy.generate(
                    verifier_messages(problem, candidate), n=1, params=self.params
                )
            return sample_score(gen.samples[0]), gen.usage

        results = await asyncio.gather(*(judge(c) for c in steps))
        usage = sum((u for _, u in results), Usage())
        return Scores(
            step_scores=[[s] for s, _ in results], usage=usage, source="generative_verifier"
        )

    def score_sync(self, problem: str, steps: Sequence[Sequence[str]]) -> Scores:
        """Blocking `score` for scripts without a running loop."""
        return run_sync(self.score(problem, steps))


def verifier_messages(problem: str, steps: Sequence[str]) -> list[ChatMessage]:
    """The judge prompt: the problem and the solution so far (steps joined by blank lines)."""
    solution = "\n\n".join(s.strip("\n") for s in steps)
    return [
        {"role": "system", "content": VERIFIER_SYSTEM_PROMPT},
        {
            "role": "user",
            "content": VERIFIER_USER_TEMPLATE.format(problem=problem, solution=solution),
        },
    ]


def sample_score(sample: Sample) -> float:
    """P(Yes)/(P(Yes)+P(No)) from the first token's top logprobs; else the text's verdict."""
    if sample.logprobs:
        p = yes_probability(sample.logprobs[0])
        if p is not None:
            return p
    words = _FIRST_WORD.findall(sample.text.strip().lower())
    if words and words[0] == "yes":
        return 1.0
    if words and words[0] == "no":
        return 0.0
    return 0.5


def yes_probability(first_token: dict[str, Any]) -> float | None:
    """Normalised P(Yes) from one `logprobs.content` entry; `None` when neither Yes nor No is
    among its top tokens. Tokens are compared after strip/lower, so " Yes" and "yes" add up."""
    candidates = first_token.get("top_logprobs") or [first_token]
    mass = {"yes": 0.0, "no": 0.0}
    for entry in candidates:
        token = str(entry.get("token", "")).strip().lower()
        logprob = entry.get("logprob")
        if token in mass and logprob is not None and math.isfinite(float(logprob)):
            mass[token] += math.exp(float(logprob))
    total = mass["yes"] + mass["no"]
    return mass["yes"] / total if total > 0 else None
