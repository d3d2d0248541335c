"""Early-stopping self-consistency that cancels requests in flight (issue 12).

A round is ONE streamed chat completion with `n` = w; the Beta test runs each time a choice
finishes and, once decided, the client closes the response. Checked here: the streamed request
and chunks against vLLM's protocol, the disconnect as the simulator sees it, the ledger's
partial tokens, the vote without the cancelled choices, the sync twin, retries, and a server
that ignores `stream`.

Every streamed chunk is checked against vLLM 0.32's own `ChatCompletionStreamResponse` schema
(exported by `make vllm-contract`) and against the stricter `STREAM_CHUNK`, written from the
fields of vLLM's `ChatCompletionStreamResponse`, `ChatCompletionResponseStreamChoice` and
`DeltaMessage` with the exported `UsageInfo` and logprobs definitions.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from typing import Any

import httpx
import pytest
from jsonschema import Draft202012Validator
from loopback import LoopbackServer
from vllm_wire import SimWire, schema, violations

from langgraph_tts import create_search_graph
from langgraph_tts.answers import extract_answer
from langgraph_tts.clients import Backoff, ChatPolicy, Sample, SamplingParams
from langgraph_tts.clients._stream import ChoiceStream
from langgraph_tts.clients.types import StopTest
from langgraph_tts.errors import ServerError
from langgraph_tts.prompts import POLICY_SYSTEM_PROMPT
from langgraph_tts.sim.config import SimConfig
from langgraph_tts.sim.engine import SimEngine
from langgraph_tts.sim.inprocess import SimPolicy, SimPRM
from langgraph_tts.sim.server import start_server
from langgraph_tts.sim.world import make_problems

FAST = Backoff(initial_s=0.001, max_s=0.002, retry_after_cap_s=0.05)
BASE = "http://policy.test/v1"
PROBLEM = make_problems(1, seed=0)[0].text
DECIDED = make_problems(5, seed=0)[3].text
"""A problem whose adaptive self-consistency run decides in its third round (seed 1)."""
MESSAGES = [
    {"role": "system", "content": POLICY_SYSTEM_PROMPT},
    {"role": "user", "content": PROBLEM},
]
PARAMS = SamplingParams(seed=3, max_tokens=1024)


def _chunk_schema() -> dict[str, Any]:
    defs = schema("ChatCompletionResponse")["$defs"]
    nullable = {"anyOf": [{"type": "string"}, {"type": "null"}]}
    delta = {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "role": nullable,
            "content": nullable,
            "reasoning": nullable,
            "reasoning_content": nullable,
            "tool_calls": {"type": "array"},
        },
    }
    choice = {
        "type": "object",
        "additionalProperties": False,
        "required": ["index", "delta"],
        "properties": {
            "index": {"type": "integer"},
            "delta": delta,
            "logprobs": {"anyOf": [{"$ref": "#/$defs/ChatCompletionLogProbs"}, {"type": "null"}]},
            "finish_reason": nullable,
            "stop_reason": {"anyOf": [{"type": "integer"}, {"type": "string"}, {"type": "null"}]},
            "token_ids": {
                "anyOf": [{"type": "array", "items": {"type": "integer"}}, {"type": "null"}]
            },
        },
    }
    return {
        "$defs": defs,
        "type": "object",
        "additionalProperties": False,
        "required": ["id", "object", "created", "model", "choices"],
        "properties": {
            "id": {"type": "string"},
            "object": {"const": "chat.completion.chunk"},
            "created": {"type": "integer"},
            "model": {"type": "string"},
            "choices": {"type": "array", "items": choice},
            "usage": {"anyOf": [{"$ref": "#/$defs/UsageInfo"}, {"type": "null"}]},
            "prompt_token_ids": {"anyOf": [{"type": "array"}, {"type": "null"}]},
        },
    }


STREAM_CHUNK = _chunk_schema()


def _policy(transport: Any, **kw: Any) -> ChatPolicy:
    return ChatPolicy(BASE, "sim-policy", transport=transport, backoff=FAST, **kw)


def _after(k: int) -> StopTest:
    def stop(finished: Sequence[Sample]) -> bool:
        return len(finished) >= k

    return stop


# -- the request and the chunks speak vLLM's protocol -----------------------------------------


def test_the_stream_request_validates_against_vllm() -> None:
    wire = SimWire(SimConfig(seed=0, max_model_len=4096))
    policy = ChatPolicy(BASE, "sim-policy", transport=wire.transport, backoff=FAST)
    asyncio.run(policy.generate_until(MESSAGES, n=4, stop=_after(2), params=PARAMS))
    (post,) = [e for e in wire.posts() if e.path == "/v1/chat/completions"]
    body = post.body or {}
    assert body["stream"] is True and body["n"] == 4
    assert body["stream_options"] == {"include_usage": True, "continuous_usage_stats": True}
    assert violations(body, "ChatCompletionRequest") == []


def test_the_simulator_streams_chunks_in_vllm_shape() -> None:
    engine = SimEngine(SimConfig(seed=0, stream_interval=3))
    body = {
        "model": "sim-policy",
        "messages": MESSAGES,
        "n": 3,
        "seed": 1,
        "stream": True,
        "stream_options": {"include_usage": True, "continuous_usage_stats": True},
        "return_token_ids": True,
    }
    stream = engine.chat_stream(body)
    events = [e for step in stream.steps() for e in step]
    validator = Draft202012Validator(STREAM_CHUNK)
    for event in events:
        assert [e.message for e in validator.iter_errors(event)] == []
        assert violations(event, "ChatCompletionStreamResponse") == []
    # n role chunks first, choices interleaved, one finish per choice, a final usage chunk
    assert [e["choices"][0]["delta"].get("role") for e in events[:3]] == ["assistant"] * 3
    finishes = [c["index"] for e in events for c in e["choices"] if c.get("finish_reason")]
    assert sorted(finishes) == [0, 1, 2]
    assert events[-1]["choices"] == [] and events[-1]["usage"]["completion_tokens"] == sum(
        c.tokens for c in stream.choices
    )
    # the streamed text is the non-streamed reply's, choice by choice
    full = engine.chat_completions({k: v for k, v in body.items() if k != "stream_options"})
    texts = [
        "".join(
            c["delta"].get("content") or "" for e in events for c in e["choices"] if c["index"] == i
        )
        for i in range(3)
    ]
    assert texts == [c["message"]["content"] for c in full.payload["choices"]]


def test_stream_options_without_stream_are_refused_as_vllm_does() -> None:
    engine = SimEngine(SimConfig(seed=0))
    wire = SimWire()
    status, payload = wire.exchange(
        "POST",
        "/v1/chat/completions",
        json.dumps({"messages": MESSAGES, "stream_options": {"include_usage": True}}).encode(),
    )
    assert status == 400 and "stream=True" in payload["error"]["message"]
    assert engine.stats.snapshot()["streams"] == {}


# -- early stop over HTTP: the server sees the disconnect -------------------------------------


def test_a_round_stops_early_and_the_server_sees_the_disconnect() -> None:
    with start_server(SimConfig(seed=0, decode_ms=2.0, stream_interval=2)) as server:
        policy = ChatPolicy(server.base_url, "sim-policy", backoff=FAST)
        gen = asyncio.run(policy.generate_until(MESSAGES, n=8, stop=_after(2), params=PARAMS))
        full = asyncio.run(policy.generate(MESSAGES, n=8, params=PARAMS))
        for _ in range(100):  # the server notices between two decoding steps
            if server.stats()["streams"].get("requests") == 1:
                break
            asyncio.run(asyncio.sleep(0.02))
        streams = server.stats()["streams"]
    assert len(gen.samples) == 2 and gen.cancelled == 6
    assert streams["requests"] == 1 and streams["aborted"] == 1 and streams["aborted_choices"] >= 1
    # the two shortest choices finished; the cancelled ones' partial tokens are booked
    lengths = sorted(s.tokens for s in full.samples)
    assert sorted(s.tokens for s in gen.samples) == lengths[:2]
    assert gen.usage.completion_tokens == sum(s.tokens for s in gen.samples) + gen.cancelled_tokens
    assert 0 < gen.cancelled_tokens < sum(lengths[2:])
    assert gen.usage.completion_tokens < full.usage.completion_tokens
    assert not gen.usage_estimated and gen.usage.prompt_tokens == full.usage.prompt_tokens


def test_the_sync_twin_and_the_in_process_simulator_agree_with_http() -> None:
    with start_server(SimConfig(seed=0)) as server:
        policy = ChatPolicy(server.base_url, "sim-policy", backoff=FAST)
        gen = policy.generate_until_sync(MESSAGES, n=6, stop=_after(3), params=PARAMS)
    local = asyncio.run(
        SimPolicy(seed=0).generate_until(MESSAGES, n=6, stop=_after(3), params=PARAMS)
    )
    assert [s.text for s in gen.samples] == [s.text for s in local.samples]
    assert len(gen.samples) == 3 and gen.cancelled == local.cancelled == 3
    assert gen.usage.completion_tokens >= local.usage.completion_tokens > 0


# -- the graph: vote without the cancelled choices, ledger with their tokens ------------------


def _sc_run(policy: Any, **settings: Any) -> dict[str, Any]:
    graph = create_search_graph(
        "self_consistency", policy=policy, budget=16, adaptive=True, seed=1, **settings
    )
    return graph.invoke({"problem": DECIDED})


def test_the_ledger_counts_partial_tokens_and_the_vote_excludes_cancelled_choices() -> None:
    policy = SimPolicy(seed=0)
    out = _sc_run(policy)
    ledger, result = out["ledger"], out["result"]
    stats = policy.stats()
    assert ledger["cancelled"] > 0 and ledger["cancelled_tokens"] > 0
    assert stats["streams"]["aborted_choices"] == ledger["cancelled"]
    # every token received, the cancelled choices' partial ones included, is booked; the
    # engine may have decoded the rest of the step in which the test decided (1 token each)
    gap = stats["completion_tokens"] - ledger["completion_tokens"]
    assert 0 <= gap <= ledger["cancelled"]
    assert ledger["samples"] == stats["samples"] == result["voters"]
    assert result["adaptive"]["cancelled"] == ledger["cancelled"]
    assert sum(result["adaptive"]["widths"]) == ledger["samples"] + ledger["cancelled"]
    assert ledger["saved_tokens_est"] >= 0
    fixed_rounds = _sc_run(SimPolicy(seed=0), adaptive_cancel=False)
    assert fixed_rounds["ledger"].get("cancelled", 0) == 0
    assert ledger["completion_tokens"] < fixed_rounds["ledger"]["completion_tokens"]
    assert out["answer"] == fixed_rounds["answer"]


def test_a_metered_policy_of_an_evaluation_cancels_too() -> None:
    from langgraph_tts.replicas import Meter, MeteredPolicy, current_meter

    meter = Meter()
    token = current_meter().set(meter)
    try:
        out = _sc_run(MeteredPolicy(SimPolicy(seed=0)))
    finally:
        current_meter().reset(token)
    assert out["ledger"]["cancelled"] > 0
    assert len(meter.latency_ms) == out["ledger"]["policy_requests"]  # every round timed


def test_hard_caps_count_the_cancelled_choices_too() -> None:
    out = _sc_run(SimPolicy(seed=0), max_samples=20)
    ledger = out["ledger"]
    assert ledger["samples"] + ledger.get("cancelled", 0) <= 20


def test_best_of_n_with_a_majority_vote_cancels_too() -> None:
    graph = create_search_graph(
        "best_of_n",
        policy=SimPolicy(seed=0),
        prm=SimPRM(seed=0),
        budget=16,
        adaptive=True,
        vote="majority",
        seed=1,
    )
    out = graph.invoke({"problem": DECIDED})
    assert out["ledger"]["cancelled"] > 0 and out["result"]["adaptive"]["stop"] == "decided"
    weighted = create_search_graph(
        "best_of_n", policy=SimPolicy(seed=0), prm=SimPRM(seed=0), budget=16, adaptive=True, seed=1
    ).invoke({"problem": DECIDED})
    assert weighted["ledger"].get("cancelled", 0) == 0  # a PRM-weighted vote needs whole rounds


def _sse(events: list[dict[str, Any] | str]) -> bytes:
    return b"".join(
        f"data: {e if isinstance(e, str) else json.dumps(e)}\n\n".encode() for e in events
    )


def _chunk(i: int, text: str, tokens: int, finish: str | None = None) -> dict[str, Any]:
    choice = {"index": i, "delta": {"content": text}, "finish_reason": finish}
    usage = {"prompt_tokens": 50, "completion_tokens": tokens, "total_tokens": 50 + tokens}
    return {"object": "chat.completion.chunk", "choices": [choice], "usage": usage}


def _answer(x: str) -> str:
    return f"Add them.\n\nThe answer is $\\boxed{{{x}}}$."


class ScriptedStream:
    """A loopback policy server streaming scripted chunks, one script per attempt."""

    def __init__(self, *scripts: list[dict[str, Any] | str]) -> None:
        self.scripts = list(scripts)
        self.bodies: list[dict[str, Any]] = []
        self.server = LoopbackServer(self.handle)

    def handle(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/models"):
            return httpx.Response(200, json={"data": []})
        self.bodies.append(json.loads(request.content))
        script = self.scripts[min(len(self.bodies), len(self.scripts)) - 1]
        headers = {"Content-Type": "text/event-stream"}
        return httpx.Response(200, content=_sse(script), headers=headers)


def test_the_vote_never_sees_a_cancelled_choice() -> None:
    # choice 4 has written a different answer but not finished when four "7"s decide
    script: list[dict[str, Any] | str] = [_chunk(4, _answer("5"), 30)]
    script += [_chunk(i, _answer("7"), 20, "stop") for i in range(4)]
    script += [_chunk(4, " more", 31, "stop"), "[DONE]"]
    server = ScriptedStream(script)
    policy = _policy(server.server.transport)
    out = create_search_graph(
        "self_consistency", policy=policy, budget=5, adaptive=True, adaptive_start=5
    ).invoke({"problem": "What is 3 + 4?"})
    assert out["answer"] == "7" and out["result"]["voters"] == 4
    assert out["result"]["groups"] == [{"answer": "7", "count": 4, "weight": 4.0}]
    assert out["ledger"]["cancelled"] == 1 and out["ledger"]["cancelled_tokens"] == 30
    assert out["ledger"]["completion_tokens"] == 4 * 20 + 30
    assert out["ledger"]["samples"] == 4 and out["result"]["adaptive"]["stop"] == "decided"


# -- retries, broken streams, servers that do not stream --------------------------------------


def test_a_stream_broken_before_any_choice_finished_is_retried_once_counted() -> None:
    broken: list[dict[str, Any] | str] = [_chunk(0, "Half", 5), _chunk(1, "way", 5)]
    whole: list[dict[str, Any] | str] = [
        _chunk(0, _answer("1"), 12, "stop"),
        _chunk(1, _answer("2"), 14, "stop"),
        "[DONE]",
    ]
    server = ScriptedStream(broken, whole)
    gen = asyncio.run(
        _policy(server.server.transport).generate_until(
            MESSAGES, n=2, stop=_after(5), params=PARAMS
        )
    )
    assert len(server.bodies) == 2
    assert [s.tokens for s in gen.samples] == [12, 14] and gen.usage.completion_tokens == 26


def test_a_stream_broken_after_a_choice_finished_keeps_it_without_a_retry() -> None:
    script: list[dict[str, Any] | str] = [
        _chunk(0, _answer("1"), 12, "stop"),
        _chunk(1, "Half", 6),
        _chunk(2, "way", 4),
    ]
    server = ScriptedStream(script)
    gen = asyncio.run(
        _policy(server.server.transport).generate_until(
            MESSAGES, n=3, stop=_after(5), params=PARAMS
        )
    )
    assert len(server.bodies) == 1
    assert len(gen.samples) == 1 and gen.cancelled == 2 and gen.cancelled_tokens == 10
    assert gen.usage.completion_tokens == 22


def test_without_streamed_usage_tokens_are_estimated_and_flagged() -> None:
    stream = ChoiceStream(2, _after(1))
    stream.line(b'data: {"choices": [{"index": 1, "delta": {"content": "abcdefghij"}}]}\n')
    assert stream.line(
        b'data: {"choices": [{"index": 0, "delta": {"content": "x"}, "finish_reason": "stop"}]}\n'
    )
    gen = stream.generation()
    assert gen.usage_estimated and gen.cancelled == 1 and gen.cancelled_tokens == 3  # 10 / 4
    assert gen.usage.completion_tokens == 4


def test_a_server_that_ignores_stream_still_works() -> None:
    wire = SimWire(SimConfig(seed=0))  # the engine answers with one JSON body
    gen = asyncio.run(
        _policy(wire.transport).generate_until(MESSAGES, n=4, stop=_after(1), params=PARAMS)
    )
    assert len(gen.samples) == 4 and gen.cancelled == 0
    assert all(extract_answer(s.text) is not None or s.truncated for s in gen.samples)


def test_a_stream_without_choices_fails_with_one_line_naming_the_cause() -> None:
    server = ScriptedStream([{"object": "chat.completion.chunk", "choices": []}, "[DONE]"])
    policy = _policy(server.server.transport, max_retries=1)
    with pytest.raises(ServerError) as err:
        asyncio.run(policy.generate_until(MESSAGES, n=2, stop=_after(1), params=PARAMS))
    message = str(err.value)
    assert "\n" not in message and "before any choice finished" in message
    assert len(server.bodies) == 2


def test_streams_survive_the_simulators_resets_and_garbled_events() -> None:
    config = SimConfig(seed=0, reset_rate=0.4, malformed_rate=0.3)
    with start_server(config) as server:
        policy = ChatPolicy(server.base_url, "sim-policy", backoff=FAST, max_retries=8)
        gens = [
            policy.generate_until_sync(
                MESSAGES, n=4, stop=_after(3), params=SamplingParams(seed=s, max_tokens=1024)
            )
            for s in range(6)
        ]
        faults = server.stats()["faults"]
    assert faults.get("reset", 0) + faults.get("malformed", 0) > 0
    # a reset comes halfway through the decoding steps: some choices may have finished (kept,
    # the rest cancelled), otherwise the request was sent again
    assert all(1 <= len(g.samples) <= 3 and len(g.samples) + g.cancelled == 4 for g in gens)
