"""The built-in simulator: vLLM wire protocol over real HTTP, faults, the latent world, and the
in-process classes (which must agree with the server)."""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import numpy as np
import pytest

from langgraph_tts import prompts
from langgraph_tts.clients.types import ChatMessage, SamplingParams
from langgraph_tts.errors import ServerError
from langgraph_tts.sim import (
    SimConfig,
    SimEmbedder,
    SimPolicy,
    SimPRM,
    count_tokens,
    is_correct,
    make_problems,
    oracle_value,
    problem_for,
    start_server,
)
from langgraph_tts.sim.engine import SimEngine
from langgraph_tts.sim.generation import Sampling, finish, solution_chunks
from langgraph_tts.sim.inprocess import prm_input
from langgraph_tts.sim.server import add_arguments, run_from_args
from langgraph_tts.sim.world import apparent_value, last_boxed, parse_solution, rng_for

pytestmark = pytest.mark.e2e

PROBLEM = "Simulated test problem: find the hidden value of the expression."
SYSTEM: ChatMessage = {"role": "system", "content": prompts.POLICY_SYSTEM_PROMPT}
USER: ChatMessage = {"role": "user", "content": PROBLEM}
STEP = {"stop": ["\n\n"], "include_stop_str_in_output": True, "max_tokens": 256}


@pytest.fixture(scope="module")
def server() -> Iterator[Any]:
    with start_server(SimConfig(seed=0)) as srv:
        yield srv


@pytest.fixture(scope="module")
def http(server: Any) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=10.0) as client:
        yield client


def chat(http: httpx.Client, **body: Any) -> httpx.Response:
    body.setdefault("model", "sim-policy")
    body.setdefault("messages", [SYSTEM, USER])
    return http.post("/v1/chat/completions", json=body)


def contents(resp: httpx.Response) -> list[str]:
    assert resp.status_code == 200, resp.text
    return [c["message"]["content"] for c in resp.json()["choices"]]


# --- chat completions --------------------------------------------------------------------------


def test_step_generation_with_n_and_exact_usage(http: httpx.Client) -> None:
    resp = chat(http, n=6, temperature=0.8, seed=1, **STEP)
    data = resp.json()
    assert data["object"] == "chat.completion" and data["id"].startswith("chatcmpl-")
    assert [c["index"] for c in data["choices"]] == list(range(6))
    texts = contents(resp)
    for c, text in zip(data["choices"], texts, strict=True):
        assert text.startswith("## Step 1:") and text.endswith("\n\n")
        assert c["finish_reason"] == "stop" and c["stop_reason"] == "\n\n"
        assert c["message"]["role"] == "assistant" and c["message"]["tool_calls"] == []
    usage = data["usage"]
    assert usage["completion_tokens"] == sum(count_tokens(t) for t in texts)
    expected_prompt = sum(count_tokens(m["content"]) + 3 for m in (SYSTEM, USER))
    assert usage["prompt_tokens"] == expected_prompt
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]


def test_stop_string_stripped_or_kept(http: httpx.Client) -> None:
    kept = chat(http, seed=5, **STEP).json()["choices"][0]
    stripped = chat(http, seed=5, **{**STEP, "include_stop_str_in_output": False}).json()
    choice = stripped["choices"][0]
    assert choice["stop_reason"] == "\n\n" and choice["finish_reason"] == "stop"
    assert choice["message"]["content"] + "\n\n" == kept["message"]["content"]


def test_no_stop_gives_the_whole_solution_then_eos(http: httpx.Client) -> None:
    choice = chat(http, seed=2, max_tokens=4096).json()["choices"][0]
    text = choice["message"]["content"]
    assert choice["finish_reason"] == "stop" and choice["stop_reason"] in (None, 151643)
    assert text.rstrip().endswith("I hope it is correct.")
    assert last_boxed(text) is not None and text.count("## Step") >= 3


def test_max_tokens_cut_reports_length(http: httpx.Client) -> None:
    resp = chat(http, seed=2, max_tokens=7, stop=["\n\n"])
    choice = resp.json()["choices"][0]
    assert choice["finish_reason"] == "length" and choice["stop_reason"] is None
    assert count_tokens(choice["message"]["content"]) == 7
    assert resp.json()["usage"]["completion_tokens"] == 7


def test_continue_final_message_returns_only_new_text(http: httpx.Client) -> None:
    first = contents(chat(http, seed=3, **STEP))[0]
    messages = [SYSTEM, USER, {"role": "assistant", "content": first}]
    resp = chat(
        http, messages=messages, continue_final_message=True, add_generation_prompt=False,
        seed=4, **STEP,
    )  # fmt: skip
    text = contents(resp)[0]
    assert text.startswith("## Step 2:") and first not in text
    # vLLM's default add_generation_prompt=True conflicts with continue_final_message
    bad = chat(http, messages=messages, continue_final_message=True, **STEP)
    assert bad.status_code == 400
    assert "Cannot set both `continue_final_message`" in bad.json()["error"]["message"]


def test_a_prefix_holding_the_answer_ends_at_once(http: httpx.Client) -> None:
    done = (
        "## Step 1: x\nfoo\n\nTherefore, the final answer is: $\\boxed{5}$. I hope it is correct."
    )
    messages = [SYSTEM, USER, {"role": "assistant", "content": done}]
    choice = chat(
        http, messages=messages, continue_final_message=True, add_generation_prompt=False, **STEP
    ).json()["choices"][0]
    # EOS: the tokenizer's (null) or the generation config's extra id (151643)
    assert choice["message"]["content"] == "" and choice["stop_reason"] in (None, 151643)


def test_seed_makes_choices_reproducible(http: httpx.Client) -> None:
    a = contents(chat(http, n=4, seed=11, temperature=1.0, **STEP))
    b = contents(chat(http, n=4, seed=11, temperature=1.0, **STEP))
    assert a == b
    # like vLLM, choice i is sampled with seed + i
    assert contents(chat(http, n=1, seed=12, temperature=1.0, **STEP))[0] == a[1]
    many = {t for s in range(20) for t in contents(chat(http, seed=100 + s, **STEP))}
    assert len(many) > 5


def test_greedy_is_deterministic_and_single_choice(http: httpx.Client) -> None:
    a = contents(chat(http, temperature=0, **STEP))
    b = contents(chat(http, temperature=0, seed=99, **STEP))
    assert a == b
    resp = chat(http, temperature=0, n=2, **STEP)
    assert resp.status_code == 400 and "greedy" in resp.json()["error"]["message"]


def test_token_ids_and_logprobs(http: httpx.Client) -> None:
    data = chat(http, seed=1, return_token_ids=True, logprobs=True, top_logprobs=3, **STEP).json()
    choice = data["choices"][0]
    n = count_tokens(choice["message"]["content"])
    assert len(choice["token_ids"]) == n == data["usage"]["completion_tokens"]
    content = choice["logprobs"]["content"]
    assert len(content) == n and all(len(e["top_logprobs"]) == 3 for e in content)
    assert all(e["logprob"] <= 0 for e in content) and "prompt_token_ids" in data


def test_rambling_steps_are_cut_at_the_step_cap() -> None:
    engine = SimEngine(SimConfig(ramble_rate=1.0))
    problem = engine.problem(PROBLEM)
    chunks = solution_chunks(problem, "", rng_for("t"), Sampling(temperature=0.8, ramble_rate=1))
    cut = finish(chunks, stop=["\n\n"], include_stop=True, max_tokens=256)
    assert cut.finish_reason == "length" and cut.tokens == 256 and cut.stop_reason is None


def test_bad_requests_get_vllm_400s(http: httpx.Client) -> None:
    cases: list[dict[str, Any]] = [
        {"stream_options": {"include_usage": True}},  # without stream: true
        {"n": 0},
        {"temperature": -1},
        {"top_p": 0},
        {"stop": ["\n\n", ""]},
        {"max_tokens": 0},
        {"max_tokens": 10**6},
        {"top_logprobs": 2},
        {"messages": []},
        {"messages": [{"content": "no role"}]},
    ]
    for extra in cases:
        resp = chat(http, **extra)
        assert resp.status_code == 400, extra
        err = resp.json()["error"]
        assert err["type"] == "BadRequestError" and err["code"] == 400 and err["message"]
    resp = http.post(
        "/v1/chat/completions", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert resp.status_code == 400


def test_unknown_model_is_404_like_vllm(http: httpx.Client) -> None:
    resp = chat(http, model="gpt-9")
    assert resp.status_code == 404
    assert resp.json()["error"]["message"] == "The model `gpt-9` does not exist."
    assert http.post("/pooling", json={"model": "sim-policy", "input": "x"}).status_code == 404


def test_models_health_and_unknown_paths(http: httpx.Client) -> None:
    models = http.get("/v1/models").json()
    assert models["object"] == "list"
    assert [m["id"] for m in models["data"]] == ["sim-policy", "sim-prm", "sim-embed"]
    health = http.get("/health")
    assert health.status_code == 200 and health.content == b""
    assert http.get("/nope").status_code == 404


# --- completions, verifier ---------------------------------------------------------------------


def test_completions_with_a_qwen_template_prompt(http: httpx.Client) -> None:
    prompt = (
        f"<|im_start|>system\n{prompts.POLICY_SYSTEM_PROMPT}<|im_end|>\n"
        f"<|im_start|>user\n{PROBLEM}<|im_end|>\n<|im_start|>assistant\n"
    )
    body = {"model": "sim-policy", "prompt": [prompt, prompt], "n": 2, "seed": 1, **STEP}
    data = http.post("/v1/completions", json=body).json()
    assert data["object"] == "text_completion"
    assert [c["index"] for c in data["choices"]] == [0, 1, 2, 3]
    assert all(c["text"].startswith("## Step 1:") for c in data["choices"])
    assert all(c["stop_reason"] == "\n\n" for c in data["choices"])
    # the same prompt through the chat endpoint, same seed: same text
    assert data["choices"][0]["text"] == contents(chat(http, seed=1, **STEP))[0]
    short = http.post("/v1/completions", json={"prompt": prompt}).json()["choices"][0]
    assert short["finish_reason"] == "length" and count_tokens(short["text"]) == 16


def test_generative_verifier_answers_yes_or_no_with_logprobs(http: httpx.Client) -> None:
    user = prompts.VERIFIER_USER_TEMPLATE.format(problem=PROBLEM, solution="## Step 1: x")
    messages = [{"role": "system", "content": prompts.VERIFIER_SYSTEM_PROMPT},
                {"role": "user", "content": user}]  # fmt: skip
    data = chat(http, messages=messages, logprobs=True, top_logprobs=2, max_tokens=1).json()
    choice = data["choices"][0]
    assert choice["message"]["content"] in ("Yes", "No")
    top = choice["logprobs"]["content"][0]["top_logprobs"]
    assert {t["token"] for t in top} == {"Yes", "No"}
    assert abs(sum(np.exp(t["logprob"]) for t in top) - 1.0) < 1e-6


# --- PRM -----------------------------------------------------------------------------------------


def _solution(http: httpx.Client, seed: int) -> str:
    return contents(chat(http, seed=seed, max_tokens=4096))[0]


def test_pooling_both_forms_one_row_per_step_tag(http: httpx.Client) -> None:
    steps = [s for s in _solution(http, 7).split("\n\n") if s]
    answer = "<extra_0>".join(steps) + "<extra_0>"
    messages = [{"role": "system", "content": prompts.PRM_SYSTEM_PROMPT},
                {"role": "user", "content": PROBLEM},
                {"role": "assistant", "content": answer}]  # fmt: skip
    by_messages = http.post(
        "/pooling", json={"model": "sim-prm", "messages": messages, "task": "token_classify"}
    ).json()
    by_input = http.post(
        "/pooling",
        json={
            "model": "sim-prm",
            "input": [prm_input(PROBLEM, steps)] * 2,
            "task": "token_classify",
        },
    ).json()
    assert by_messages["object"] == "list" and by_messages["id"].startswith("pool-")
    rows = by_messages["data"][0]["data"]
    assert len(rows) == len(steps) and all(abs(a + b - 1) < 1e-9 for a, b in rows)
    assert [d["index"] for d in by_input["data"]] == [0, 1]
    assert by_input["data"][1]["data"] == rows
    assert by_input["usage"]["prompt_tokens"] == 2 * by_messages["usage"]["prompt_tokens"]
    assert by_input["usage"]["completion_tokens"] == 0


def test_pooling_requires_the_token_classify_task(http: httpx.Client) -> None:
    for task in (None, "embed", "classify"):
        body = {"model": "sim-prm", "input": "a<extra_0>", "task": task}
        resp = http.post("/pooling", json=body)
        assert resp.status_code == 400 and "token_classify" in resp.json()["error"]["message"]


def test_oracle_prm_returns_exact_values() -> None:
    with start_server(SimConfig(seed=0, prm_noise=0.0)) as srv, httpx.Client() as client:
        body = {"model": "sim-policy", "messages": [SYSTEM, USER], "seed": 3, "max_tokens": 4096}
        text = client.post(srv.base_url + "/chat/completions", json=body).json()
        text = text["choices"][0]["message"]["content"]
        steps = [s for s in text.split("\n\n") if s]
        pool = {"model": "sim-prm", "input": prm_input(PROBLEM, steps), "task": "token_classify"}
        rows = client.post(srv.url + "/pooling", json=pool).json()["data"][0]["data"]
    problem = problem_for(PROBLEM, seed=0)
    expected = [
        oracle_value(problem, "\n\n".join(steps[: k + 1]) + "\n\n") for k in range(len(steps))
    ]
    assert [r[1] for r in rows] == pytest.approx(expected, abs=1e-12)
    assert rows[-1][1] == (1.0 if is_correct(problem, last_boxed(text)) else 0.0)


# --- embeddings ----------------------------------------------------------------------------------


def test_embeddings_put_paraphrases_of_a_direction_together(http: httpx.Client) -> None:
    texts = [contents(chat(http, seed=s, **STEP))[0] for s in range(40)]
    problem = problem_for(PROBLEM, seed=0)
    dirs = [parse_solution(problem, t).direction for t in texts]
    assert len(set(dirs)) >= 2
    data = http.post("/v1/embeddings", json={"model": "sim-embed", "input": texts}).json()
    vecs = np.array([d["embedding"] for d in data["data"]])
    assert vecs.shape == (40, 256) and np.allclose(np.linalg.norm(vecs, axis=1), 1.0)
    sims = vecs @ vecs.T
    same = [sims[i, j] for i in range(40) for j in range(i) if dirs[i] == dirs[j]]
    other = [sims[i, j] for i in range(40) for j in range(i) if dirs[i] != dirs[j]]
    assert min(same) > 0.95 and max(other) < 0.985 and np.mean(same) - np.mean(other) > 0.04
    assert data["usage"]["prompt_tokens"] == sum(count_tokens(t) for t in texts)
    b64 = http.post("/v1/embeddings", json={"input": texts[0], "encoding_format": "base64"}).json()[
        "data"
    ][0]["embedding"]
    decoded = np.frombuffer(base64.b64decode(b64), dtype="<f4")
    assert np.allclose(decoded, vecs[0], atol=1e-6)
    plain = http.post("/v1/embeddings", json={"input": ["hello world", "hello there world"]})
    assert plain.status_code == 200


# --- stats and faults ----------------------------------------------------------------------------


def test_stats_count_requests_samples_and_tokens(server: Any, http: httpx.Client) -> None:
    server.reset_stats()
    a = chat(http, n=3, seed=1, **STEP).json()
    b = http.post("/pooling", json={"input": prm_input(PROBLEM, ["x", "y"]),
                                    "task": "token_classify"}).json()  # fmt: skip
    c = http.post("/v1/embeddings", json={"input": ["a b", "c"]}).json()
    chat(http, n=0)
    stats = http.get("/sim/stats").json()
    assert stats == server.stats()
    assert stats["requests"] == {"/v1/chat/completions": 1, "/pooling": 1, "/v1/embeddings": 1}
    assert stats["samples"] == 3 and stats["chat_kinds"] == {"policy": 1}
    assert stats["prompt_tokens"] == a["usage"]["prompt_tokens"]
    assert stats["completion_tokens"] == a["usage"]["completion_tokens"]
    assert stats["prm_items"] == 1 and stats["prm_tokens"] == b["usage"]["prompt_tokens"]
    assert stats["embed_inputs"] == 2 and stats["embed_tokens"] == c["usage"]["prompt_tokens"]
    assert stats["errors"] == {"400": 1}
    assert http.post("/sim/reset").status_code == 200
    assert http.get("/sim/stats").json()["samples"] == 0


def test_fault_bursts_of_503_then_success_and_uncounted() -> None:
    with start_server(SimConfig(fail_rate=1.0, burst_len=2)) as srv, httpx.Client() as client:
        url = srv.base_url + "/chat/completions"
        body = {"messages": [USER], **STEP}
        codes = [client.post(url, json=body).status_code for _ in range(6)]
        assert codes == [503, 503, 200, 503, 503, 200]
        assert client.get(srv.url + "/health").status_code == 200  # never faulted
        stats = srv.stats()
    assert stats["faults"] == {"status_503": 4} and stats["samples"] == 2
    assert stats["requests"] == {"/v1/chat/completions": 2}


def test_429_carries_retry_after_and_malformed_bodies_do_not_parse() -> None:
    with start_server(SimConfig(fail_rate=1.0, fail_status=429, burst_len=1)) as srv:
        resp = httpx.post(srv.url + "/pooling", json={"input": "a<extra_0>", "task": "x"})
        assert resp.status_code == 429 and resp.headers["Retry-After"] == "0"
        assert resp.json()["error"]["code"] == 429
    with start_server(SimConfig(malformed_rate=1.0)) as srv:
        resp = httpx.post(srv.url + "/v1/embeddings", json={"input": "abc"})
        assert resp.status_code == 200
        with pytest.raises(json.JSONDecodeError):
            json.loads(resp.content)
        assert srv.stats()["faults"] == {"malformed": 1} and srv.stats()["embed_inputs"] == 0


def test_slow_responses_and_concurrent_latency() -> None:
    with start_server(SimConfig(slow_rate=1.0, slow_ms=120)) as srv:
        started = time.perf_counter()
        assert httpx.post(srv.url + "/v1/embeddings", json={"input": "a"}).status_code == 200
        assert time.perf_counter() - started >= 0.12
        assert srv.stats()["faults"] == {"slow": 1} and srv.stats()["embed_inputs"] == 1
    with start_server(SimConfig(latency_ms=300)) as srv:
        limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)
        with httpx.Client(limits=limits, timeout=10) as client:

            def one(i: int) -> int:
                body = {"messages": [USER], "seed": i, **STEP}
                return client.post(srv.base_url + "/chat/completions", json=body).status_code

            started = time.perf_counter()
            with ThreadPoolExecutor(max_workers=128) as pool:
                codes = list(pool.map(one, range(128)))
            elapsed = time.perf_counter() - started
    assert codes == [200] * 128
    assert elapsed < 2.5, f"128 requests of 300 ms took {elapsed:.2f}s: they were serialised"


# --- SCALE requests ------------------------------------------------------------------------------


def _ask(http: httpx.Client, system: str, user: str, **extra: Any) -> dict[str, Any]:
    resp = chat(http, messages=[{"role": "system", "content": system},
                                {"role": "user", "content": user}], **extra)  # fmt: skip
    assert resp.status_code == 200, resp.text
    data: dict[str, Any] = resp.json()
    return data


def test_scale_decompose_select_difficulty(http: httpx.Client) -> None:
    problem = problem_for(PROBLEM, seed=0)
    outlines = [
        _ask(http, prompts.DECOMPOSE_SYSTEM_PROMPT, PROBLEM, seed=s)["choices"][0]["message"][
            "content"
        ]
        for s in range(12)
    ]
    parsed = []
    for text in outlines:
        try:
            parsed.append(json.loads(text))
        except json.JSONDecodeError:
            continue
    assert len(parsed) >= 5 and any("```json" in t for t in outlines)
    assert all(list(p) == [f"step{i + 1}" for i in range(len(problem.subproblems))] for p in parsed)
    user = prompts.SELECT_OUTLINE_USER_TEMPLATE.format(
        problem=PROBLEM, versions="version1: {}\nversion2: {}\nversion3: {}"
    )
    pick = _ask(http, prompts.SELECT_OUTLINE_SYSTEM_PROMPT, user)["choices"][0]["message"]
    assert pick["content"] in ("version1", "version2", "version3")
    sub = problem.subproblems[0]
    user = prompts.DIFFICULTY_USER_TEMPLATE.format(
        problem=PROBLEM, context="", subproblem=sub.descriptions[1]
    )
    seen = [float(_ask(http, prompts.DIFFICULTY_SYSTEM_PROMPT, user, seed=s)["choices"][0]
                  ["message"]["content"]) for s in range(10)]  # fmt: skip
    assert all(0 <= x <= 1 for x in seen) and abs(np.mean(seen) - sub.difficulty) < 0.1


def _solve(http: httpx.Client, index: int, context: str, thinking: bool, **extra: Any) -> Any:
    problem = problem_for(PROBLEM, seed=0)
    question = problem.subproblems[index].descriptions[0] if index >= 0 else PROBLEM
    user = prompts.SOLVE_SUBPROBLEM_USER_TEMPLATE.format(
        conditions=PROBLEM, context=context, subproblem=question
    )
    kwargs = {"chat_template_kwargs": {"enable_thinking": thinking}}
    return _ask(http, prompts.SOLVE_SUBPROBLEM_SYSTEM_PROMPT, user, **kwargs, **extra)


def test_scale_solving_modes_cost_and_accuracy(http: httpx.Client) -> None:
    problem = problem_for(PROBLEM, seed=0)
    truth = problem.subproblems[0].value
    fast = [_solve(http, 0, "", False, seed=s) for s in range(30)]
    slow = [_solve(http, 0, "", True, seed=s) for s in range(30)]
    for r in fast:
        assert r["choices"][0]["message"]["reasoning"] is None
    for r in slow:
        msg = r["choices"][0]["message"]
        assert msg["reasoning"] and r["choices"][0]["finish_reason"] == "stop"
        assert r["usage"]["completion_tokens"] == count_tokens(msg["reasoning"]) + (
            count_tokens(msg["content"])
        )

    def accuracy(rs: list[Any]) -> float:
        return float(np.mean([last_boxed(r["choices"][0]["message"]["content"]) == truth
                              for r in rs]))  # fmt: skip

    def tokens(rs: list[Any]) -> float:
        return float(np.mean([r["usage"]["completion_tokens"] for r in rs]))

    assert tokens(slow) > 3 * tokens(fast)
    assert accuracy(slow) >= accuracy(fast)
    # a wrong earlier answer in the context poisons the next sub-problem
    if len(problem.subproblems) > 2:
        wrong_ctx = f"{problem.subproblems[0].descriptions[0]}\nstep answer: \\boxed{{99999}}"
        poisoned = [_solve(http, 1, wrong_ctx, True, seed=s) for s in range(20)]
        truth1 = problem.subproblems[1].value
        hits = [last_boxed(r["choices"][0]["message"]["content"]) == truth1 for r in poisoned]
        assert np.mean(hits) < 0.3
    cut = _solve(http, 0, "", True, max_tokens=20)["choices"][0]
    assert cut["finish_reason"] == "length" and "boxed" not in cut["message"]["content"]


def test_ignore_formats_answers_scale_prompts_in_prose() -> None:
    engine = SimEngine(SimConfig(ignore_formats=True))

    def ask(system: str, user: str) -> str:
        body = {"messages": [{"role": "system", "content": system},
                             {"role": "user", "content": user}]}  # fmt: skip
        return str(engine.chat_completions(body).payload["choices"][0]["message"]["content"])

    outline = ask(prompts.DECOMPOSE_SYSTEM_PROMPT, PROBLEM)
    assert "{" not in outline and "step1" not in outline
    with pytest.raises(json.JSONDecodeError):
        json.loads(outline)
    user = prompts.DIFFICULTY_USER_TEMPLATE.format(problem=PROBLEM, context="", subproblem="x")
    assert not any(ch.isdigit() for ch in ask(prompts.DIFFICULTY_SYSTEM_PROMPT, user))
    user = prompts.SELECT_OUTLINE_USER_TEMPLATE.format(problem=PROBLEM, versions="version1: {}")
    assert ask(prompts.SELECT_OUTLINE_SYSTEM_PROMPT, user) != "version1"


# --- the world -----------------------------------------------------------------------------------


def test_world_is_deterministic_and_datasets_keep_their_answers() -> None:
    assert make_problems(3, seed=4) == make_problems(3, seed=4)
    assert make_problems(2, seed=4)[0].text.startswith("Simulated problem 1:")
    problem_for.cache_clear()
    a = problem_for("any text at all", scenario="hard", seed=2)
    problem_for.cache_clear()
    assert problem_for("any text at all", scenario="hard", seed=2) == a
    assert problem_for("any text at all", seed=3) != a
    with open("langgraph_tts/data/math500.jsonl", encoding="utf-8") as fh:
        row = json.loads(fh.readline())
    p = problem_for(row["problem"])
    assert p.answer == row["answer"] and p.id == row["id"] and p.source == "MATH"
    assert is_correct(p, row["answer"]) and not is_correct(p, p.directions[0].typical_wrong)
    for d in p.directions:
        assert 3 <= d.n_steps <= 7 and abs(d.p - (1 - d.q) ** d.n_steps) < 1e-12
    assert 3 <= len(p.directions) <= 6 and 0 <= p.difficulty <= 1


def test_sampled_success_rates_match_the_oracle() -> None:
    problem = problem_for("calibration problem", seed=1)
    s = Sampling(temperature=1.0, ramble_rate=0.0)
    wins = [
        is_correct(problem, last_boxed("".join(solution_chunks(problem, "", rng_for("c", i), s))))
        for i in range(2000)
    ]
    assert abs(np.mean(wins) - oracle_value(problem, "")) < 0.04
    assert oracle_value(problem, "") == pytest.approx(problem.prior_success)


def test_popular_worse_puts_mass_on_flawed_lookalikes() -> None:
    for p in make_problems(20, scenario="popular_worse"):
        by_pop = sorted(p.directions, key=lambda d: -d.popularity)
        crowd = [d for d in p.directions if d.name == by_pop[0].name]
        rare = min(p.directions, key=lambda d: d.popularity)
        assert len(crowd) == 3 and sum(d.popularity for d in crowd) >= 0.75
        assert len({d.typical_wrong for d in crowd}) == 1
        assert all(d.flaw > 0 and d.flaw_subtlety >= 0.85 for d in crowd)
        assert rare.flaw == 0 and rare.popularity < 0.1
        assert all(d.p < rare.p for d in crowd)
        # every direction slips, and slips are what a PRM sees
        assert all(0.05 <= d.step_ok ** d.n_steps / (1 - d.flaw) ** d.n_steps <= 0.25 for d in p.directions)  # fmt: skip
        assert all(d.subtlety <= 0.1 for d in p.directions)


def test_flaws_are_consistent_and_overlooked_slips_are_seen() -> None:
    problem = make_problems(1, scenario="popular_worse", seed=2)[0]
    crowd = max(range(len(problem.directions)), key=lambda i: problem.directions[i].popularity)
    d = problem.directions[crowd]
    started = f"## Step 1: Begin\nWe use {d.keyword}"  # a started step: the chain stays in d
    s = Sampling(temperature=1.0, ramble_rate=0.0)
    counts = {"flaw": 0, "slip": 0, "ok": 0}
    missed = {"flaw": 0, "slip": 0}
    wins = 0
    for i in range(2500):
        text = started + "".join(solution_chunks(problem, started, rng_for("pw", i), s))
        st = parse_solution(problem, text)
        assert st.direction == crowd
        kind = "ok" if st.correct else "flaw" if st.flawed else "slip"
        counts[kind] += 1
        wins += is_correct(problem, st.answer)
        if kind == "flaw":
            assert st.answer == d.typical_wrong
        if kind != "ok":
            missed[kind] += apparent_value(problem, text, seed=0) > 0.0
    assert counts["flaw"] > 60 and counts["slip"] > 1000
    assert abs(wins / 2500 - d.p) < 0.02
    assert missed["flaw"] / counts["flaw"] > 0.75
    assert missed["slip"] / counts["slip"] < 0.15


# --- in-process classes --------------------------------------------------------------------------


def test_inprocess_classes_agree_with_the_server(server: Any, http: httpx.Client) -> None:
    config = SimConfig(seed=0)
    params = SamplingParams(temperature=0.8, seed=21, max_tokens=256, stop=("\n\n",))

    async def run() -> tuple[Any, Any, Any]:
        gen = await SimPolicy(config).generate([SYSTEM, USER], n=3, params=params)
        scores = await SimPRM(config).score(PROBLEM, [["a", "b"], [t for t in texts if t]])
        embs = await SimEmbedder(config).embed(texts)
        return gen, scores, embs

    over_http = chat(http, n=3, temperature=0.8, seed=21, **STEP).json()
    texts = [c["message"]["content"] for c in over_http["choices"]]
    gen, scores, embs = asyncio.run(run())
    assert [s.text for s in gen.samples] == texts
    assert [s.stop_reason for s in gen.samples] == ["\n\n"] * 3
    assert sum(s.tokens for s in gen.samples) == gen.usage.completion_tokens
    assert gen.usage.prompt_tokens == over_http["usage"]["prompt_tokens"]
    pool = http.post("/pooling", json={"task": "token_classify", "input": [
        prm_input(PROBLEM, ["a", "b"]), prm_input(PROBLEM, texts)]}).json()  # fmt: skip
    assert scores.step_scores == [[r[1] for r in d["data"]] for d in pool["data"]]
    emb_http = http.post("/v1/embeddings", json={"input": texts}).json()
    assert np.allclose(embs.vectors, [d["embedding"] for d in emb_http["data"]])
    assert embs.usage.prompt_tokens == emb_http["usage"]["prompt_tokens"]


def test_inprocess_errors_are_server_errors() -> None:
    policy = SimPolicy(seed=1)
    with pytest.raises(ServerError) as err:
        asyncio.run(policy.generate([USER], n=2, params=SamplingParams(temperature=0)))
    assert err.value.status == 400
    assert policy.model == "sim-policy" and policy.stats()["samples"] == 0


# --- config and command line ---------------------------------------------------------------------


def test_config_validation_messages() -> None:
    with pytest.raises(ValueError, match="fail_rate must be a probability"):
        SimConfig(fail_rate=1.5)
    with pytest.raises(ValueError, match="latency_ms must be a finite number"):
        SimConfig(latency_ms=-1)
    with pytest.raises(ValueError, match="Extra inputs"):
        SimConfig(fail_rat=0.1)  # type: ignore[call-arg]


def test_command_line_options_and_bad_values(capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(["--port", "0", "--scenario", "hard", "--fail-rate", "2"])
    assert args.host == "127.0.0.1" and args.scenario == "hard"
    assert run_from_args(args) == 2
    assert "fail_rate" in capsys.readouterr().err


def test_run_from_args_serves_until_ctrl_c() -> None:
    script = (
        "import argparse, sys\n"
        "from langgraph_tts.sim.server import add_arguments, run_from_args\n"
        "p = argparse.ArgumentParser(); add_arguments(p)\n"
        "sys.exit(run_from_args(p.parse_args(['--port', '0'])))\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("simulator listening on http://127.0.0.1:")
        assert "(policy model sim-policy, PRM sim-prm, embedder sim-embed)" in line
        url = line.split()[3]
        assert httpx.get(url + "/health").status_code == 200
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
