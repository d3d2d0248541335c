"""How the clients read what vLLM 0.32 says (issue 9, points 1-7): integer stop reasons, aborted
choices, `max_model_len`, pooling truncation and special tokens, base64 byte order, the PRM's
batched-form fallback, and request seeds. Requests take aiohttp to a loopback test server."""

from __future__ import annotations

import itertools
import json
import logging
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from fakes import RecordingPolicy
from loopback import LoopbackServer

from langgraph_tts import create_search_graph
from langgraph_tts.clients import (
    Backoff,
    ChatPolicy,
    PoolingPRM,
    Sample,
    SamplingParams,
    Transport,
)
from langgraph_tts.clients.policy import parse_chat_response
from langgraph_tts.clients.types import ChatMessage, Generation, Usage
from langgraph_tts.context import ScaleContext
from langgraph_tts.errors import ServerError
from langgraph_tts.seeds import SEED_STRIDE, request_seed
from langgraph_tts.serving import RECIPE_MAX_MODEL_LEN, RECIPE_PROMPT_ROOM, cap_max_tokens
from langgraph_tts.sim.inprocess import SimEmbedder, SimPolicy, SimPRM
from langgraph_tts.sim.server import SimConfig
from langgraph_tts.sim.world import make_problems

FAST = Backoff(initial_s=0.001, max_s=0.002, retry_after_cap_s=0.05)
BASE = "http://policy.test:8000/v1"
PRM_URL = "http://prm.test:8001"
QWEN_PRM = "Qwen/Qwen2.5-Math-PRM-7B"
USER: list[ChatMessage] = [{"role": "user", "content": "What is 2+2?"}]
ROOT = Path(__file__).resolve().parents[1]
Respond = Callable[[httpx.Request, dict[str, Any]], httpx.Response]


class Server:
    """A loopback server's handler: `/v1/models` with a `max_model_len`, the rest to `respond`."""

    def __init__(self, respond: Respond, max_model_len: int | None = None) -> None:
        self.respond = respond
        self.max_model_len = max_model_len
        self.bodies: list[dict[str, Any]] = []
        self.gets = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.method == "GET":
            self.gets += 1
            card = {"id": "pol", "object": "model", "max_model_len": self.max_model_len}
            return httpx.Response(200, json={"object": "list", "data": [card]})
        body = json.loads(request.content)
        self.bodies.append(body)
        return self.respond(request, body)

    @property
    def transport(self) -> Transport:
        return LoopbackServer(self).transport


def choice(i: int, text: str, finish: str | None, stop: str | int | None) -> dict[str, Any]:
    message = {"role": "assistant", "content": text}
    return {"index": i, "message": message, "finish_reason": finish, "stop_reason": stop}


def completion(choices: list[dict[str, Any]]) -> dict[str, Any]:
    usage = {"prompt_tokens": 5, "completion_tokens": 3 * len(choices), "total_tokens": 0}
    return {
        "id": "c",
        "object": "chat.completion",
        "model": "pol",
        "choices": choices,
        "usage": usage,
    }


def ok(_: httpx.Request, body: dict[str, Any]) -> httpx.Response:
    choices = [choice(i, f"x{i}", "stop", None) for i in range(body.get("n", 1))]
    return httpx.Response(200, json=completion(choices))


# -- 1. integer stop reasons and aborted choices -----------------------------------------------


@pytest.mark.parametrize("token_id", [151643, 128001, 128008, 128009])
def test_integer_stop_reason_ends_the_solution_not_the_step(token_id: int) -> None:
    sample = Sample(text="so the answer is 4", finish_reason="stop", stop_reason=token_id)
    assert sample.ended_solution and not sample.ended_step and not sample.truncated


def test_only_the_delimiter_string_ends_a_step() -> None:
    data = completion(
        [
            choice(0, "Step 1\n\n", "stop", "\n\n"),
            choice(1, "done", "stop", 151643),
            choice(2, "done", "stop", None),
            choice(3, "cut", "length", None),
        ]
    )
    s = parse_chat_response(data, n=4, url=BASE).samples
    assert [x.ended_step for x in s] == [True, False, False, False]
    assert [x.ended_solution for x in s] == [False, True, True, False]


class EndsAtTokenId:
    """A policy whose solutions all end at once with stop token id 151643 (no step delimiter)."""

    model = "pol"

    def __init__(self) -> None:
        self.prefixes: list[str] = []

    async def generate(
        self,
        messages: Any,
        *,
        n: int = 1,
        params: SamplingParams | None = None,
        continue_final_message: bool = False,
    ) -> Generation:
        self.prefixes.append(messages[-1]["content"] if continue_final_message else "")
        samples = [Sample("2+2 = 4, so \\boxed{4}", "stop", 151643, tokens=6)] * n
        return Generation(samples=samples, usage=Usage(1, 5, 6 * n))


@pytest.mark.parametrize("strategy", ["beam", "dvts", "rebase", "dora"])
async def test_search_does_not_continue_a_solution_ended_by_a_stop_token_id(
    strategy: str,
) -> None:
    policy = EndsAtTokenId()
    config = SimConfig(seed=1)
    graph = create_search_graph(
        strategy, policy=policy, prm=SimPRM(config), embedder=SimEmbedder(config), budget=4
    )
    out = await graph.ainvoke({"problem": "What is 2+2?"})
    assert policy.prefixes == [""], "an ended solution was continued"
    assert out["answer"] == "4"


async def test_aborted_choice_is_retried() -> None:
    def respond(_: httpx.Request, body: dict[str, Any]) -> httpx.Response:
        finish = "abort" if len(server.bodies) == 1 else "stop"
        return httpx.Response(200, json=completion([choice(0, "", finish, None)]))

    server = Server(respond)
    policy = ChatPolicy(BASE, "pol", transport=server.transport, backoff=FAST)
    gen = await policy.generate(USER)
    assert len(server.bodies) == 2 and gen.samples[0].finish_reason == "stop"


async def test_always_aborted_is_a_server_error_not_a_step() -> None:
    server = Server(
        lambda r, b: httpx.Response(200, json=completion([choice(0, "", "abort", None)]))
    )
    policy = ChatPolicy(BASE, "pol", transport=server.transport, backoff=FAST, max_retries=2)
    with pytest.raises(ServerError, match="abort"):
        await policy.generate(USER)
    assert len(server.bodies) == 3


# -- 2. max_model_len ---------------------------------------------------------------------------


async def test_max_tokens_capped_to_max_model_len_and_stated(
    caplog: pytest.LogCaptureFixture,
) -> None:
    server = Server(ok, max_model_len=4096)
    policy = ChatPolicy(BASE, "pol", transport=server.transport)
    with caplog.at_level(logging.WARNING):
        gen = await policy.generate(USER, params=SamplingParams(max_tokens=16384))
        small = await policy.generate(USER, params=SamplingParams(max_tokens=512))
        await policy.generate(USER, params=SamplingParams(max_tokens=9000))
    assert [b["max_tokens"] for b in server.bodies] == [4096, 512, 4096]
    assert gen.max_tokens_cap == 4096 and small.max_tokens_cap is None
    assert server.gets == 1
    warnings = [r.getMessage() for r in caplog.records if "max_model_len=4096" in r.getMessage()]
    assert len(warnings) == 1 and "max_tokens=16384 capped to 4096" in warnings[0]


async def test_no_cap_when_the_server_does_not_say() -> None:
    server = Server(ok, max_model_len=None)
    policy = ChatPolicy(BASE, "pol", transport=server.transport)
    gen = await policy.generate(USER, params=SamplingParams(max_tokens=16384))
    assert server.bodies[0]["max_tokens"] == 16384 and gen.max_tokens_cap is None


def test_cap_max_tokens() -> None:
    assert cap_max_tokens(16384, 4096) == 4096
    assert cap_max_tokens(100, 4096) == 100
    assert cap_max_tokens(None, 4096) is None
    assert cap_max_tokens(16384, None) == 16384


def test_readme_recipe_and_scale_defaults_agree() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    policy_line = re.search(r"vllm serve Qwen/Qwen2.5-1.5B-Instruct[^\n]*\n[^\n]*", readme)
    assert policy_line is not None
    window = re.search(r"--max-model-len (\d+)", policy_line.group(0))
    assert window is not None and int(window.group(1)) == RECIPE_MAX_MODEL_LEN
    ctx = ScaleContext()
    largest = max(ctx.system1_max_tokens, ctx.system2_max_tokens, ctx.max_total_tokens)
    assert largest + RECIPE_PROMPT_ROOM <= RECIPE_MAX_MODEL_LEN


# -- 3, 5, 6. the PRM's /pooling requests -------------------------------------------------------


def pooling_ok(_: httpx.Request, body: dict[str, Any]) -> httpx.Response:
    texts = body.get("input") or [body["messages"][-1]["content"]]
    data = [
        {"index": i, "object": "pooling", "data": [[0.1, 0.9]] * t.count("<extra_0>")}
        for i, t in enumerate(texts)
    ]
    return httpx.Response(200, json={"data": data, "usage": {"prompt_tokens": 7}})


@pytest.mark.parametrize("batch", ["on", "off"])
async def test_pooling_truncates_left_and_adds_no_special_tokens(batch: str) -> None:
    server = Server(pooling_ok)
    prm = PoolingPRM(
        PRM_URL, QWEN_PRM, batch=batch, transport=server.transport, truncate_prompt_tokens=4000
    )  # type: ignore[arg-type]
    await prm.score("P?", [["a", "b"], ["c"]])
    for body in server.bodies:
        assert body["truncation_side"] == "left" and body["truncate_prompt_tokens"] == 4000
        assert body["add_special_tokens"] is False


async def test_too_long_input_400_does_not_switch_off_batching() -> None:
    message = (
        "This model's maximum context length is 4096 tokens. However, your prompt contains "
        "5000 input tokens, which exceeds this limit even without any output tokens."
    )
    error = {"error": {"message": message, "type": "BadRequestError", "param": None, "code": 400}}
    server = Server(lambda r, b: httpx.Response(400, json=error))
    prm = PoolingPRM(PRM_URL, QWEN_PRM, transport=server.transport, backoff=FAST)
    with pytest.raises(ServerError, match="maximum context length"):
        await prm.score("P?", [["a"], ["b"]])
    assert prm.batched and len(server.bodies) == 1


async def test_rejected_batched_form_still_switches_to_one_request_per_candidate() -> None:
    def respond(request: httpx.Request, body: dict[str, Any]) -> httpx.Response:
        if "input" in body:
            error = {"error": {"message": "Input should be a valid string", "code": 400}}
            return httpx.Response(400, json=error)
        return pooling_ok(request, body)

    server = Server(respond)
    prm = PoolingPRM(PRM_URL, QWEN_PRM, transport=server.transport, backoff=FAST)
    await prm.score("P?", [["a"], ["b"]])
    assert not prm.batched and len(server.bodies) == 3


# -- 7. seeds --------------------------------------------------------------------------------


def test_request_seeds_are_spaced_by_at_least_n_and_differ_across_problems() -> None:
    seeds = [
        request_seed(0, p, it, node, n=64)
        for p in ("A", "B")
        for it in range(20)
        for node in range(20)
    ]
    assert all(isinstance(s, int) for s in seeds)
    ordered = sorted(s for s in seeds if s is not None)
    assert all(b - a >= SEED_STRIDE >= 64 for a, b in itertools.pairwise(ordered))
    assert request_seed(None, "A", 1) is None
    assert request_seed(0, "A", 1, 2) == request_seed(0, "A", 1, 2) != request_seed(1, "A", 1, 2)
    assert ordered[-1] + SEED_STRIDE < 2**63
    with pytest.raises(ValueError):
        request_seed(0, "A", n=SEED_STRIDE + 1)


async def test_search_seeds_never_overlap_within_or_across_problems() -> None:
    config = SimConfig(seed=1)
    ranges: list[tuple[int, int]] = []
    for problem in make_problems(2, seed=9):
        policy = RecordingPolicy(SimPolicy(config))
        graph = create_search_graph(
            "dvts",
            policy=policy,
            prm=SimPRM(config),
            embedder=SimEmbedder(config),
            budget=8,
            seed=3,
        )
        await graph.ainvoke({"problem": problem.text})
        for call in policy.calls:
            assert call.params is not None and call.params.seed is not None
            ranges.append((call.params.seed, call.params.seed + call.n))
    ranges.sort()
    assert len(ranges) > 4
    assert all(end <= start for (_, end), (start, _) in itertools.pairwise(ranges))


def test_preflight_names_a_window_below_the_runs_max_tokens() -> None:
    from langgraph_tts.preflight import largest_max_tokens, window_warning

    ctx = ScaleContext(strategy="scale")
    assert largest_max_tokens(ctx) == (16384, "system2_max_tokens")
    text = window_warning(ctx, "pol", BASE, 4096)
    assert "max_model_len=4096" in text and "system2_max_tokens=16384" in text
    assert "--max-model-len 20480" in text
    assert window_warning(ctx, "pol", BASE, RECIPE_MAX_MODEL_LEN) == ""
    assert window_warning(ctx, "pol", BASE, None) == ""


async def test_preflight_warns_against_a_4096_window(caplog: pytest.LogCaptureFixture) -> None:
    from langgraph_tts.preflight import check_servers
    from langgraph_tts.sim.server import start_server

    with start_server(SimConfig(max_model_len=4096)) as server:
        ctx = ScaleContext(strategy="scale", base_url=server.base_url, model="sim-policy")
        with caplog.at_level(logging.WARNING):
            await check_servers(ctx)
    assert any("max_model_len=4096" in r.getMessage() for r in caplog.records)
