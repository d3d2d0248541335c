"""Contract tests from vLLM's own protocol code (issue 9): every request the clients build, for
every strategy, validates against vLLM's request models; every response fixture built with
vLLM's response models parses; the simulator answers within the same schemas.

The schemas and fixtures are in tests/vllm_contract/, written by scripts/vllm_contract.py
from the vLLM wheel named in its manifest; vLLM itself is not needed here.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from loopback import LoopbackServer
from vllm_wire import (
    RESPONSE_SCHEMAS,
    Exchange,
    SimWire,
    fixture,
    manifest,
    request_schema,
    violations,
)

from langgraph_tts import create_scale_graph, create_search_graph
from langgraph_tts.clients import (
    Backoff,
    ChatModelPolicy,
    ChatPolicy,
    GenerativeVerifier,
    OpenAIEmbedder,
    PoolingPRM,
    Transport,
)
from langgraph_tts.clients.policy import model_len_of, parse_chat_response
from langgraph_tts.errors import ServerError
from langgraph_tts.sim.config import SimConfig
from langgraph_tts.sim.world import make_problems

FAST = Backoff(initial_s=0.001, max_s=0.002, retry_after_cap_s=0.05)
ROOT = "http://sim.test"
BASE = f"{ROOT}/v1"
SEARCH = ["cot", "self_consistency", "best_of_n", "beam", "dvts", "rebase", "dora"]
VLLM_LIKE = SimConfig(seed=0, max_model_len=4096)
"""A simulator that behaves as the README's vLLM would on a 4096-token window."""


def test_manifest_names_the_pinned_version() -> None:
    info = manifest()
    assert info["vllm_version"] == "0.32.0"
    assert "truncation_side" in info["fields"]["PoolingCompletionRequest"]
    assert "endianness" in info["fields"]["EmbeddingCompletionRequest"]


# -- fixtures built with vLLM's response models parse -----------------------------------------


@pytest.mark.parametrize(
    ("name", "schema_name"),
    [
        ("chat_n4_stop_reasons", "ChatCompletionResponse"),
        ("chat_reasoning", "ChatCompletionResponse"),
        ("pooling_token_classify", "PoolingResponse"),
        ("embeddings_float", "EmbeddingResponse"),
        ("embeddings_base64_little", "EmbeddingResponse"),
        ("error_400_max_tokens", "ErrorResponse"),
        ("models", "ModelList"),
    ],
)
def test_fixtures_match_their_schemas(name: str, schema_name: str) -> None:
    assert violations(fixture(name), schema_name) == []


def test_chat_fixture_stop_reasons_and_token_ids() -> None:
    gen = parse_chat_response(fixture("chat_n4_stop_reasons"), n=4, url=BASE)
    s = gen.samples
    assert [x.ended_step for x in s] == [True, False, False, False]
    assert [x.ended_solution for x in s] == [False, True, True, False]
    assert s[1].stop_reason == 151643 and s[3].truncated
    assert [x.tokens for x in s] == [3, 4, 5, 6] and gen.usage.completion_tokens == 18
    reasoning = parse_chat_response(fixture("chat_reasoning"), n=1, url=BASE).samples[0]
    assert reasoning.reasoning == "2+2 is 4." and reasoning.text == "\\boxed{4}"


def _serving(name: str, status: int = 200) -> Transport:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "GET":
            return httpx.Response(200, json=fixture("models"))
        return httpx.Response(status, json=fixture(name))

    return LoopbackServer(handler).transport


async def test_pooling_fixture_gives_step_rewards() -> None:
    prm = PoolingPRM(ROOT, "Qwen/Qwen2.5-Math-PRM-7B", transport=_serving("pooling_token_classify"))
    scores = await prm.score("P?", [["a", "b"], ["c"]])
    assert scores.step_scores == [[0.9, 0.7], [0.4]] and scores.usage.prompt_tokens == 80


@pytest.mark.parametrize("name", ["embeddings_float", "embeddings_base64_little"])
async def test_embedding_fixtures_decode_to_the_same_vectors(name: str) -> None:
    embedder = OpenAIEmbedder(BASE, "BAAI/bge-m3", transport=_serving(name))
    out = await embedder.embed(["a", "b"])
    assert out.vectors == [[0.25, -0.5, 1.0], [0.0, 0.125, -2.0]]


async def test_error_fixture_message_is_surfaced() -> None:
    policy = ChatPolicy(BASE, "x", transport=_serving("error_400_max_tokens", 400))
    with pytest.raises(ServerError, match="cannot be greater than max_model_len=4096"):
        await policy.generate([{"role": "user", "content": "q"}])


def test_models_fixture_gives_max_model_len() -> None:
    assert model_len_of(fixture("models"), "Qwen/Qwen2.5-1.5B-Instruct") == 4096
    assert model_len_of(fixture("models"), "other") is None


# -- every strategy's requests validate; the simulator's answers do too ------------------------


def _check_wire(wire: SimWire) -> None:
    """No rejected request, every body a valid vLLM request, every answer a valid response."""
    assert wire.exchanges, "nothing was sent"
    for ex in wire.exchanges:
        assert ex.status == 200, (ex.path, ex.payload)
        if ex.body is not None:
            assert violations(ex.body, request_schema(ex.path, ex.body)) == [], ex.body
        assert violations(ex.payload, RESPONSE_SCHEMAS[ex.path]) == [], ex.path


def _ended_texts(exchanges: list[Exchange]) -> list[str]:
    ended = []
    for ex in exchanges:
        for c in ex.payload.get("choices", []) if ex.path == "/v1/chat/completions" else []:
            if c["finish_reason"] == "stop" and not isinstance(c["stop_reason"], str):
                ended.append(c["message"]["content"])
    return [t for t in ended if t.strip()]


def _continued_ended(exchanges: list[Exchange]) -> list[str]:
    """Ended solutions that a later request continued."""
    ended = _ended_texts(exchanges)
    prefixes = [
        ex.body["messages"][-1]["content"]
        for ex in exchanges
        if ex.body and ex.body.get("continue_final_message")
    ]
    return [t for t in ended for p in prefixes if p.endswith(t)]


def _clients(wire: SimWire, prm_batch: str = "on") -> tuple[ChatPolicy, Any, OpenAIEmbedder]:
    policy = ChatPolicy(BASE, "sim-policy", transport=wire.transport, backoff=FAST)
    prm = PoolingPRM(
        ROOT,
        "sim-prm",
        batch=prm_batch,  # type: ignore[arg-type]
        template="qwen2.5",
        transport=wire.transport,
        truncate_prompt_tokens=4096,
    )
    embedder = OpenAIEmbedder(BASE, "sim-embed", transport=wire.transport)
    return policy, prm, embedder


PROBLEMS = [p.text for p in make_problems(2, seed=4)]


@pytest.mark.parametrize("strategy", SEARCH)
async def test_search_requests_follow_vllms_contract(strategy: str) -> None:
    wire = SimWire(VLLM_LIKE)
    policy, prm, embedder = _clients(wire)
    graph = create_search_graph(
        strategy, policy=policy, prm=prm, embedder=embedder, budget=8, seed=1
    )
    for problem in PROBLEMS:
        out = await graph.ainvoke({"problem": problem})
        assert out["answer"] is not None
    _check_wire(wire)
    assert _continued_ended(wire.exchanges) == []


async def test_unbatched_prm_and_generative_verifier_follow_the_contract() -> None:
    wire = SimWire(VLLM_LIKE)
    policy, prm, embedder = _clients(wire, prm_batch="off")
    await create_search_graph(
        "beam", policy=policy, prm=prm, embedder=embedder, budget=4, seed=1
    ).ainvoke({"problem": PROBLEMS[0]})
    verifier = GenerativeVerifier(policy)
    await create_search_graph(
        "best_of_n", policy=policy, prm=verifier, embedder=embedder, budget=4, seed=1
    ).ainvoke({"problem": PROBLEMS[0]})
    _check_wire(wire)
    assert any(ex.body and "messages" in ex.body for ex in wire.posts() if ex.path == "/pooling")


@pytest.mark.parametrize("system2_strategy", ["single", "dora"])
async def test_scale_on_a_4096_window_is_never_rejected(system2_strategy: str) -> None:
    """SCALE's System-2 asks for 16384 tokens; the server holds 4096: the client caps."""
    wire = SimWire(VLLM_LIKE)
    policy, prm, embedder = _clients(wire)
    graph = create_scale_graph(
        policy=policy,
        prm=prm,
        embedder=embedder,
        seed=2,
        system2_strategy=system2_strategy,
        system2_budget=4,
        outline_versions=2,
    )
    out = await graph.ainvoke({"problem": PROBLEMS[1]})
    assert out["answer"] is not None
    _check_wire(wire)
    chats = [ex.body for ex in wire.posts() if ex.body and ex.path == "/v1/chat/completions"]
    assert max(b["max_tokens"] for b in chats) == 4096
    assert _continued_ended(wire.exchanges) == []


async def test_every_strategy_meets_integer_stop_reasons_and_never_continues_them() -> None:
    wire = SimWire(VLLM_LIKE)
    policy, prm, embedder = _clients(wire)
    for strategy in ("beam", "rebase", "dora"):
        graph = create_search_graph(
            strategy, policy=policy, prm=prm, embedder=embedder, budget=8, seed=3
        )
        for problem in make_problems(4, seed=8):
            await graph.ainvoke({"problem": problem.text})
    stops = [
        c["stop_reason"]
        for ex in wire.posts()
        if ex.path == "/v1/chat/completions"
        for c in ex.payload["choices"]
    ]
    assert 151643 in stops and "\n\n" in stops and None in stops
    assert _continued_ended(wire.exchanges) == []


async def test_langchain_adapter_requests_follow_the_contract() -> None:
    httpx2 = pytest.importorskip("httpx2")
    wire = SimWire(VLLM_LIKE)

    def handler(request: Any) -> Any:
        status, payload = wire.exchange(request.method, request.url.path, request.content)
        return httpx2.Response(status, json=payload)

    policy = ChatModelPolicy.from_openai(
        BASE,
        "sim-policy",
        max_retries=0,
        http_async_client=httpx2.AsyncClient(transport=httpx2.MockTransport(handler)),
    )
    _, prm, embedder = _clients(wire)
    for strategy in ("best_of_n", "beam"):
        graph = create_search_graph(
            strategy, policy=policy, prm=prm, embedder=embedder, budget=4, seed=1
        )
        assert (await graph.ainvoke({"problem": PROBLEMS[0]}))["answer"] is not None
    _check_wire(wire)
    assert _continued_ended(wire.exchanges) == []


async def test_langchain_adapter_caps_max_tokens_to_the_window() -> None:
    httpx2 = pytest.importorskip("httpx2")
    wire = SimWire(VLLM_LIKE)

    def handler(request: Any) -> Any:
        status, payload = wire.exchange(request.method, request.url.path, request.content)
        return httpx2.Response(status, json=payload)

    policy = ChatModelPolicy.from_openai(
        BASE,
        "sim-policy",
        max_retries=0,
        max_model_len=4096,
        http_async_client=httpx2.AsyncClient(transport=httpx2.MockTransport(handler)),
    )
    graph = create_scale_graph(policy=policy, seed=2, outline_versions=1)
    assert (await graph.ainvoke({"problem": PROBLEMS[1]}))["answer"] is not None
    _check_wire(wire)
    # ChatOpenAI sends max_tokens as max_completion_tokens; vLLM reads either
    sent = [ex.body.get("max_completion_tokens", ex.body.get("max_tokens")) for ex in wire.posts()]
    assert max(t for t in sent if t is not None) == 4096


async def test_langchain_adapter_resends_an_aborted_request() -> None:
    httpx2 = pytest.importorskip("httpx2")
    bodies: list[dict[str, Any]] = []

    def handler(request: Any) -> Any:
        bodies.append(json.loads(request.content))
        data = fixture("chat_reasoning")
        data["choices"][0]["finish_reason"] = "abort" if len(bodies) == 1 else "stop"
        return httpx2.Response(200, json=data)

    policy = ChatModelPolicy.from_openai(
        BASE,
        "m",
        max_retries=0,
        http_async_client=httpx2.AsyncClient(transport=httpx2.MockTransport(handler)),
    )
    gen = await policy.generate([{"role": "user", "content": "q"}])
    assert len(bodies) == 2 and gen.samples[0].finish_reason == "stop"


# -- the simulator keeps vLLM 0.32's rules --------------------------------------------------


def _post(wire: SimWire, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    return wire.exchange("POST", path, json.dumps(body).encode())


CHAT = {"model": "sim-policy", "messages": [{"role": "user", "content": PROBLEMS[0]}]}


def test_sim_reports_and_enforces_max_model_len_with_vllms_400() -> None:
    wire = SimWire(VLLM_LIKE)
    _, models = wire.exchange("GET", "/v1/models", b"")
    assert model_len_of(models, "sim-policy") == 4096
    status, body = _post(wire, "/v1/chat/completions", {**CHAT, "max_tokens": 16384})
    assert status == 400 and body == fixture("error_400_max_tokens")
    status, body = _post(wire, "/v1/chat/completions", {**CHAT, "max_tokens": 4096, "seed": 1})
    assert status == 200  # prompt + max_tokens over the window: lowered, as vLLM does
    long = {"model": "sim-policy", "messages": [{"role": "user", "content": "word " * 5000}]}
    status, body = _post(wire, "/v1/chat/completions", long)
    assert status == 400 and "maximum context length is 4096" in body["error"]["message"]


def test_sim_seeds_choice_i_with_seed_plus_i() -> None:
    wire = SimWire()
    step = {**CHAT, "temperature": 1.0, "stop": ["\n\n"], "max_tokens": 200}
    _, joint = _post(wire, "/v1/chat/completions", {**step, "n": 3, "seed": 40})
    alone = [
        _post(wire, "/v1/chat/completions", {**step, "n": 1, "seed": 40 + i})[1] for i in (0, 1, 2)
    ]
    texts = [c["message"]["content"] for c in joint["choices"]]
    assert texts == [a["choices"][0]["message"]["content"] for a in alone]


@pytest.mark.parametrize("endianness", ["little", "big", "native", None])
def test_sim_base64_embeddings_honour_endianness(endianness: str | None) -> None:
    import base64
    import sys

    import numpy as np

    wire = SimWire()
    body = {"model": "sim-embed", "input": ["a b c"], "encoding_format": "float"}
    _, floats = _post(wire, "/v1/embeddings", body)
    extra = {} if endianness is None else {"endianness": endianness}
    _, b64 = _post(wire, "/v1/embeddings", {**body, "encoding_format": "base64", **extra})
    order = {"little": "<", "big": ">"}.get(endianness or sys.byteorder, "<")
    raw = base64.b64decode(b64["data"][0]["embedding"])
    decoded = np.frombuffer(raw, dtype=f"{order}f4").tolist()
    assert np.allclose(decoded, floats["data"][0]["embedding"], atol=1e-6)


def test_sim_pooling_truncation_keeps_the_side_vllm_keeps() -> None:
    steps = [f"Step {i}: " + "word " * 60 for i in range(8)]
    rendered = (
        "<|im_start|>user\nP?<|im_end|>\n<|im_start|>assistant\n"
        + "".join(s + "<extra_0>" for s in steps)
        + "<|im_end|>\n"
    )
    base = {"model": "sim-prm", "task": "token_classify", "input": [rendered]}
    wire = SimWire()
    _, full = _post(wire, "/pooling", base)
    rows = full["data"][0]["data"]
    _, right = _post(wire, "/pooling", {**base, "truncate_prompt_tokens": 200})
    _, left = _post(
        wire, "/pooling", {**base, "truncate_prompt_tokens": 200, "truncation_side": "left"}
    )
    kept = len(left["data"][0]["data"])
    assert 0 < kept < len(rows)
    assert left["data"][0]["data"] == rows[-kept:] and right["data"][0]["data"] == rows[:kept]
    status, err = _post(SimWire(SimConfig(max_model_len=256)), "/pooling", base)
    assert status == 400 and "maximum context length is 256" in err["error"]["message"]
