"""Budget safety: no strategy exceeds its sample or token cap, whatever the server returns.

A hostile `Policy` answers every request with more choices than `n`, absurd or missing usage,
empty texts, and `length` on every step; hypothesis draws the strategy, the budget and the
caps. The ledger (what the run reports it spent) must stay within `max_samples` and
`max_tokens_cap`, and what was *requested* must too (n per request, max_tokens per sample).
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from langgraph_tts.clients.policy import parse_chat_response
from langgraph_tts.clients.types import (
    ChatMessage,
    Embeddings,
    Generation,
    Sample,
    SamplingParams,
    Scores,
    Usage,
)
from langgraph_tts.errors import ServerError
from langgraph_tts.ledger import bounded_generation
from langgraph_tts.search.graph import create_search_graph

STRATEGIES = ("best_of_n", "self_consistency", "beam", "dvts", "rebase", "dora")
HUGE = 10**12


@dataclass(frozen=True)
class Hostility:
    extra_choices: int = 0  # choices beyond `n`
    usage: str = "honest"  # honest | huge | missing | negative
    text: str = "normal"  # normal | empty | mixed
    finish: str = "length"  # length | step | eos | mixed


@dataclass
class HostilePolicy:
    """A `Policy` that disregards what it was asked for, as a broken or malicious server might."""

    how: Hostility
    model: str = "hostile"
    requested_samples: int = 0
    requested_tokens: int = 0
    true_tokens: int = 0
    calls: int = 0
    requests: list[tuple[int, int | None]] = field(default_factory=list)

    async def generate(
        self,
        messages: Sequence[ChatMessage],
        *,
        n: int = 1,
        params: SamplingParams | None = None,
        continue_final_message: bool = False,
    ) -> Generation:
        self.calls += 1
        max_tokens = params.max_tokens if params is not None else None
        self.requests.append((n, max_tokens))
        self.requested_samples += n
        self.requested_tokens += n * (max_tokens or 0)
        how = self.how
        samples = []
        for j in range(n + how.extra_choices):
            text = f"Step {self.calls}.{j}: 2 + 2 = 4. The answer is \\boxed{{{j % 3}}}\n\n"
            if how.text == "empty" or (how.text == "mixed" and j % 2):
                text = ""
            finish, stop = "length", None
            if how.finish == "step" or (how.finish == "mixed" and j % 3 == 1):
                finish, stop = "stop", "\n\n"
            elif how.finish == "eos" or (how.finish == "mixed" and j % 3 == 2):
                finish = "stop"
            # what this choice really cost: the limit if cut there, else <= one per character
            true = min(max_tokens or HUGE, len(text)) if finish == "stop" else max_tokens or 1
            if j < n:
                self.true_tokens += true
            tokens = {"honest": true, "huge": HUGE, "missing": 0, "negative": -HUGE}
            samples.append(Sample(text, finish, stop, tokens=tokens[how.usage]))
        completion = {"honest": sum(s.tokens for s in samples), "huge": HUGE, "missing": 0}
        usage = Usage(
            requests=1,
            prompt_tokens=0 if how.usage == "missing" else 50,
            completion_tokens=completion.get(how.usage, -HUGE),
        )
        return Generation(samples=samples, usage=usage)


class FlatPRM:
    async def score(self, problem: str, steps: Sequence[Sequence[str]]) -> Scores:
        return Scores(
            step_scores=[[0.5 + 0.01 * (len(s) % 7)] * max(len(s), 1) for s in steps],
            usage=Usage(requests=1, prompt_tokens=10),
        )


class HashEmbedder:
    async def embed(self, texts: Sequence[str]) -> Embeddings:
        vectors = []
        for text in texts:
            digest = hashlib.sha256(text.encode()).digest()
            vectors.append([1.0 + b / 255 for b in digest[:8]])
        return Embeddings(vectors=vectors, usage=Usage())


def _run(strategy: str, how: Hostility, **settings: Any) -> tuple[dict[str, Any], HostilePolicy]:
    policy = HostilePolicy(how)
    graph = create_search_graph(
        strategy,
        policy=policy,
        prm=FlatPRM(),
        embedder=HashEmbedder(),
        max_iterations=4,
        max_step_tokens=64,
        max_total_tokens=256,
        seed=0,
        **settings,
    )
    out = asyncio.run(graph.ainvoke({"problem": "What is 2 + 2?"}))
    return out, policy


hostilities = st.builds(
    Hostility,
    extra_choices=st.integers(0, 5),
    usage=st.sampled_from(["honest", "huge", "missing", "negative"]),
    text=st.sampled_from(["normal", "empty", "mixed"]),
    finish=st.sampled_from(["length", "step", "eos", "mixed"]),
)


@settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    strategy=st.sampled_from(STRATEGIES),
    how=hostilities,
    budget=st.integers(1, 8),
    max_samples=st.one_of(st.none(), st.integers(1, 40)),
    max_tokens_cap=st.one_of(st.none(), st.integers(1, 2000)),
)
def test_no_strategy_exceeds_its_caps_whatever_the_server_returns(
    strategy: str,
    how: Hostility,
    budget: int,
    max_samples: int | None,
    max_tokens_cap: int | None,
) -> None:
    out, policy = _run(
        strategy, how, budget=budget, max_samples=max_samples, max_tokens_cap=max_tokens_cap
    )
    ledger = out["ledger"]
    assert ledger["samples"] >= 0 and ledger["completion_tokens"] >= 0
    # what the graph asked for is within the caps ...
    assert all(n >= 1 and (mt is None or mt >= 1) for n, mt in policy.requests)
    if max_samples is not None:
        assert policy.requested_samples <= max_samples
        assert ledger["samples"] <= max_samples
    if max_tokens_cap is not None:
        # (requests may ask for more than is left when the server under-reports, but what
        # the chosen choices really cost, and what is booked, stay within the cap)
        assert policy.true_tokens <= max_tokens_cap
        assert ledger["completion_tokens"] <= max_tokens_cap
    # ... and what it books never exceeds what it asked for
    assert ledger["samples"] <= policy.requested_samples
    assert ledger["completion_tokens"] <= policy.requested_tokens
    assert ledger["policy_requests"] == policy.calls
    # every candidate the run keeps came from a requested choice
    assert len(out["nodes"]) - 1 <= policy.requested_samples


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_length_on_every_step_with_huge_usage_stops_at_the_caps(strategy: str) -> None:
    how = Hostility(extra_choices=3, usage="huge", finish="length")
    out, policy = _run(strategy, how, budget=4, max_samples=10, max_tokens_cap=300)
    assert out["ledger"]["samples"] <= 10
    assert out["ledger"]["completion_tokens"] <= 300
    assert policy.requested_samples <= 10


# ---- the HTTP client refuses a response with a wrong number of choices ----------------------


def _raw(choices: int, usage: dict[str, Any] | None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "choices": [
            {"index": i, "message": {"content": f"c{i}"}, "finish_reason": "length"}
            for i in range(choices)
        ]
    }
    if usage is not None:
        body["usage"] = usage
    return body


@pytest.mark.parametrize("extra", [1, 5, 100])
def test_chat_client_rejects_more_choices_than_n(extra: int) -> None:
    with pytest.raises(ServerError, match="choices for n=2"):
        parse_chat_response(_raw(2 + extra, {"completion_tokens": 4}), n=2, url="http://x/v1")


def test_chat_client_parses_missing_and_huge_usage() -> None:
    missing = parse_chat_response(_raw(2, None), n=2, url="http://x/v1")
    assert missing.usage.completion_tokens == 0 and len(missing.samples) == 2
    huge = parse_chat_response(_raw(2, {"completion_tokens": HUGE}), n=2, url="http://x/v1")
    assert huge.usage.completion_tokens == HUGE  # reported as is; the graph clamps what it books


# ---- the clamp itself ------------------------------------------------------------------------


def _gen(samples: list[Sample], completion: int, prompt: int = 7) -> Generation:
    return Generation(samples=samples, usage=Usage(1, prompt, completion))


def test_bounded_generation_leaves_a_correct_reply_alone(caplog: pytest.LogCaptureFixture) -> None:
    gen = _gen([Sample("ab", "stop", None, tokens=3), Sample("c", "length", None, tokens=8)], 11)
    assert bounded_generation(gen, n=2, max_tokens=8) is gen
    assert bounded_generation(gen, n=2, max_tokens=None) is gen
    # the client splits usage over choices by text length, which can overshoot one choice
    split = _gen(
        [Sample("a" * 90, "stop", None, tokens=9), Sample("b", "stop", None, tokens=1)], 10
    )
    quiet = bounded_generation(split, n=2, max_tokens=8)
    assert [s.tokens for s in quiet.samples] == [8, 1] and quiet.usage == split.usage
    assert "out of bounds" not in caplog.text


def test_bounded_generation_clamps_a_hostile_reply(caplog: pytest.LogCaptureFixture) -> None:
    many = _gen([Sample("x", "stop", None, tokens=1)] * 5, 5)
    out = bounded_generation(many, n=2, max_tokens=4)
    assert len(out.samples) == 2 and out.usage.completion_tokens == 5 and "5 choices" in caplog.text
    out = bounded_generation(
        _gen([Sample("x", "length", None, tokens=HUGE)], HUGE), n=1, max_tokens=4
    )
    assert out.usage.completion_tokens == 4 and out.samples[0].tokens == 4
    negative = _gen([Sample("abc", "stop", None, tokens=-5)], -HUGE, prompt=-3)
    out = bounded_generation(negative, n=1, max_tokens=100)
    assert out.usage.completion_tokens == 3 and out.usage.prompt_tokens == 0
    # no usage at all: a cut choice costs max_tokens, another its length in characters
    missing = _gen([Sample("abcdef", "stop", "\n\n"), Sample("ab", "length", None)], 0)
    out = bounded_generation(missing, n=2, max_tokens=4)
    assert [s.tokens for s in out.samples] == [4, 4] and out.usage.completion_tokens == 8
    empty = _gen([Sample("", "stop", None)], 0)
    assert bounded_generation(empty, n=1, max_tokens=4) is empty
