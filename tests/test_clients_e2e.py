"""End-to-end tests of the clients against the simulator: a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import socket
import warnings
from collections.abc import Iterator
from typing import Any

import pytest

from langgraph_tts.clients import (
    Backoff,
    ChatModelPolicy,
    ChatPolicy,
    GenerativeVerifier,
    OpenAIEmbedder,
    PoolingPRM,
    SamplingParams,
)
from langgraph_tts.errors import ServerUnavailableError

sim_server = pytest.importorskip("langgraph_tts.sim.server")
SimConfig = sim_server.SimConfig
start_server = sim_server.start_server

pytestmark = pytest.mark.e2e

FAST = Backoff(initial_s=0.001, max_s=0.01, retry_after_cap_s=0.05)
PROBLEM = "What is the sum of the first 10 positive integers?"
MESSAGES = [{"role": "user", "content": PROBLEM}]
STEP = SamplingParams(temperature=0.8, max_tokens=256, stop=("\n\n",))


@pytest.fixture(scope="module")
def server() -> Iterator[Any]:
    with start_server(SimConfig()) as srv:
        yield srv


def _delta(before: dict[str, Any], after: dict[str, Any], key: str) -> int:
    return int(after.get(key, 0)) - int(before.get(key, 0))


def _requests(stats: dict[str, Any], endpoint: str) -> int:
    """Requests the server counted for `endpoint` (e.g. "/v1/chat/completions")."""
    requests = stats.get("requests", {})
    return int(requests.get(endpoint, 0)) if isinstance(requests, dict) else 0


def test_n_choices_in_one_request_and_usage_matches_server(server: Any) -> None:
    policy = ChatPolicy(server.base_url, "sim-policy", backoff=FAST)

    async def run() -> list[Any]:
        try:
            return await asyncio.gather(
                policy.generate(MESSAGES, n=8, params=STEP),
                policy.generate(MESSAGES, n=3, params=STEP),
                policy.generate(MESSAGES, n=1),
            )
        finally:
            await policy.aclose()

    before = server.stats()
    gens = asyncio.run(run())
    after = server.stats()
    assert [len(g.samples) for g in gens] == [8, 3, 1]
    assert _requests(after, "/v1/chat/completions") - _requests(before, "/v1/chat/completions") == 3
    assert _delta(before, after, "samples") == 12
    assert sum(g.usage.prompt_tokens for g in gens) == _delta(before, after, "prompt_tokens")
    assert sum(g.usage.completion_tokens for g in gens) == _delta(
        before, after, "completion_tokens"
    )
    for gen in gens:
        assert sum(s.tokens for s in gen.samples) == gen.usage.completion_tokens
        for s in gen.samples:
            assert s.finish_reason in ("stop", "length")
    steps = [s for s in gens[0].samples if s.ended_step]
    assert all(s.stop_reason == "\n\n" and s.text.endswith("\n\n") for s in steps)


def test_continue_final_message_and_sync_wrapper(server: Any) -> None:
    policy = ChatPolicy(server.base_url, "sim-policy", backoff=FAST)
    first = policy.generate_sync(MESSAGES, n=1, params=STEP).samples[0]
    partial = [*MESSAGES, {"role": "assistant", "content": first.text}]
    with warnings.catch_warnings():
        warnings.simplefilter("error", ResourceWarning)
        for _ in range(2):  # successive event loops
            gen = policy.generate_sync(partial, n=2, params=STEP, continue_final_message=True)
            assert len(gen.samples) == 2
    assert "sim-policy" in asyncio.run(policy.list_models())


def test_many_concurrent_requests_bounded(server: Any) -> None:
    policy = ChatPolicy(server.base_url, "sim-policy", max_concurrency=4, backoff=FAST)

    async def run() -> list[Any]:
        try:
            return await asyncio.gather(*(policy.generate(MESSAGES, n=2) for _ in range(40)))
        finally:
            await policy.aclose()

    assert len(asyncio.run(run())) == 40


def test_chat_model_policy_with_real_chat_openai(server: Any) -> None:
    policy = ChatModelPolicy.from_openai(server.base_url, "sim-policy", max_retries=2)
    before = server.stats()
    samples = []
    for _ in range(2):  # two successive asyncio.run calls on one ChatOpenAI
        gen = asyncio.run(policy.generate(MESSAGES, n=4, params=STEP))
        assert len(gen.samples) == 4
        assert sum(s.tokens for s in gen.samples) == gen.usage.completion_tokens
        samples += gen.samples
    after = server.stats()
    assert any(s.ended_step for s in samples)
    for s in samples:
        assert (s.stop_reason == "\n\n") == (s.finish_reason == "stop" and s.text.endswith("\n\n"))
    assert _requests(after, "/v1/chat/completions") - _requests(before, "/v1/chat/completions") == 2
    assert _delta(before, after, "samples") == 8


def test_prm_unbatched_and_batched(server: Any) -> None:
    steps = [
        ["## Step 1: The sum is n(n+1)/2.\n\n", "## Step 2: 10*11/2 = 55.\n\n"],
        ["## Step 1: Add them one by one: 1+2+...+10 = 55.\n\n"],
        ["## Step 1: Guess.\n\n", "## Step 2: It is 50.\n\n", "## Step 3: Done.\n\n"],
    ]
    unbatched = PoolingPRM(server.url, "sim-prm", batch="off", backoff=FAST)
    batched = PoolingPRM(server.url, "sim-prm", batch="on", template="qwen2.5", backoff=FAST)
    before = server.stats()
    s_off = unbatched.score_sync(PROBLEM, steps)
    mid = server.stats()
    s_on = batched.score_sync(PROBLEM, steps)
    after = server.stats()
    assert _requests(mid, "/pooling") - _requests(before, "/pooling") == 3
    assert _requests(after, "/pooling") - _requests(mid, "/pooling") == 1
    for scores in (s_off, s_on):
        assert [len(s) for s in scores.step_scores] == [2, 1, 3]
        assert all(0.0 <= x <= 1.0 for s in scores.step_scores for x in s)
        assert scores.usage.prompt_tokens > 0
    assert s_off.usage.requests == 3 and s_on.usage.requests == 1
    assert s_off.usage.prompt_tokens == _delta(before, mid, "prm_tokens")
    assert s_on.usage.prompt_tokens == _delta(mid, after, "prm_tokens")
    # the client-side template renders exactly what the server's template renders
    assert s_on.step_scores == s_off.step_scores
    assert s_on.usage.prompt_tokens == s_off.usage.prompt_tokens


def test_generative_verifier_against_sim(server: Any) -> None:
    verifier = GenerativeVerifier(ChatPolicy(server.base_url, "sim-policy", backoff=FAST))
    scores = verifier.score_sync(PROBLEM, [["## Step 1: 55.\n\n"], ["## Step 1: 50.\n\n"]])
    assert scores.source == "generative_verifier" and scores.usage.requests == 2
    assert all(len(s) == 1 and 0.0 <= s[0] <= 1.0 for s in scores.step_scores)


def test_embeddings(server: Any) -> None:
    embedder = OpenAIEmbedder(server.base_url, "sim-embed", backoff=FAST)
    texts = ["## Step 1: add the numbers", "## Step 1: use the formula", "something else"]
    before = server.stats()
    out = embedder.embed_sync(texts)
    after = server.stats()
    assert len(out.vectors) == 3 and len({len(v) for v in out.vectors}) == 1
    assert out.usage.requests == 1
    assert out.usage.prompt_tokens == _delta(before, after, "embed_tokens") > 0
    assert _requests(after, "/v1/embeddings") - _requests(before, "/v1/embeddings") == 1


@pytest.mark.parametrize("status", [503, 429])
def test_injected_failures_are_retried_to_success(status: int) -> None:
    config = SimConfig(fail_rate=0.3, fail_status=status)
    with start_server(config) as srv:
        policy = ChatPolicy(srv.base_url, "sim-policy", max_retries=10, backoff=FAST)
        prm = PoolingPRM(srv.url, "sim-prm", max_retries=10, backoff=FAST)

        async def run() -> tuple[list[Any], Any]:
            try:
                gens = await asyncio.gather(*(policy.generate(MESSAGES, n=2) for _ in range(20)))
                scores = await prm.score(PROBLEM, [["## Step 1: 55.\n\n"]] * 5)
                return gens, scores
            finally:
                await policy.aclose()
                await prm.aclose()

        gens, scores = asyncio.run(run())
        assert len(gens) == 20 and len(scores.step_scores) == 5
        stats = srv.stats()
        assert stats["faults"].get(f"status_{status}", 0) > 0  # injected, then retried
        assert _requests(stats, "/v1/chat/completions") == 20
        assert stats["samples"] == 40


def test_malformed_bodies_are_retried() -> None:
    with start_server(SimConfig(malformed_rate=0.3)) as srv:
        policy = ChatPolicy(srv.base_url, "sim-policy", max_retries=10, backoff=FAST)
        for _ in range(8):
            assert len(policy.generate_sync(MESSAGES, n=2).samples) == 2
        assert _requests(srv.stats(), "/v1/chat/completions") >= 8


def test_dead_port_is_server_unavailable() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/v1"
    policy = ChatPolicy(url, "sim-policy", max_retries=1, backoff=FAST)
    with pytest.raises(ServerUnavailableError) as info:
        policy.generate_sync(MESSAGES)
    msg = str(info.value)
    assert f"127.0.0.1:{port}" in msg and "vllm serve" in msg and f"--port {port}" in msg
