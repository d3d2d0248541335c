"""Faults injected by the simulator, survived by the clients and by whole runs (issue 11, item 1).

Every fault of `SimConfig` (503/429 bursts with Retry-After, connection resets mid-response,
responses slower than the client's timeout, truncated JSON, `/pooling` with a row too many,
embeddings of the wrong dimension, a replica that dies and comes back) is sent over real HTTP
on 127.0.0.1. Each is retried with backoff and jitter and the answer equals the fault-free
one; when the retries run out the error names the server, what it did and how many attempts
were made. Then 100 problems run twice through `Solver` (policy, PRM and embedder over HTTP),
without and with 20 % of requests failing transiently: every problem is answered and the
accuracy is the same. Finally `langgraph-tts eval` as a black box: problems whose retries ran
out are recorded with their error, the run goes on, and the next run retries only them.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from langgraph_tts.clients import (
    Backoff,
    ChatPolicy,
    OpenAIEmbedder,
    PoolingPRM,
    SamplingParams,
)
from langgraph_tts.errors import ServerError, ServerUnavailableError
from langgraph_tts.sim.server import SimConfig, start_server
from langgraph_tts.sim.world import is_correct, make_problems

pytestmark = pytest.mark.e2e

FAST = Backoff(initial_s=0.005, max_s=0.05, retry_after_cap_s=0.05)
STEP = SamplingParams(temperature=0.8, max_tokens=256, stop=("\n\n",), seed=3)
PROBLEMS = [p.text for p in make_problems(6, seed=5)]
STEPS = [["## Step 1: Set up\nWe set up, which gives $3$.\n\n", "## Step 2: Go\nSo $4$.\n\n"]]


@pytest.fixture(scope="module")
def clean() -> Iterator[Any]:
    with start_server(SimConfig(seed=5)) as srv:
        yield srv


def _faulted(**faults: Any) -> Any:
    return start_server(SimConfig(seed=5, **faults))


async def _workload(url: str, base_url: str, **client: Any) -> tuple[list[Any], ...]:
    """Chat, PRM and embedding requests for every problem, all at once."""
    opts = {"backoff": FAST, "max_retries": 8, **client}
    policy = ChatPolicy(base_url, "sim-policy", max_model_len=32768, **opts)
    prm = PoolingPRM(url, "sim-prm", batch="off", **opts)
    embedder = OpenAIEmbedder(base_url, "sim-embed", dim=256, **opts)
    try:
        msgs = [[{"role": "user", "content": p}] for p in PROBLEMS]
        gens = await asyncio.gather(*(policy.generate(m, n=4, params=STEP) for m in msgs))
        scores = await asyncio.gather(*(prm.score(p, STEPS) for p in PROBLEMS))
        vectors = await asyncio.gather(*(embedder.embed([p, p[:40]]) for p in PROBLEMS))
    finally:
        await asyncio.gather(policy.aclose(), prm.aclose(), embedder.aclose())
    return (
        [[s.text for s in g.samples] for g in gens],
        [s.step_scores for s in scores],
        [[[round(x, 5) for x in v] for v in e.vectors] for e in vectors],
    )


@pytest.fixture(scope="module")
def expected(clean: Any) -> tuple[list[Any], ...]:
    return asyncio.run(_workload(clean.url, clean.base_url))


FAULTS = {
    "503 bursts with Retry-After": ({"fail_rate": 0.4, "retry_after_s": 0.01}, "status_503"),
    "429 bursts with Retry-After": ({"fail_rate": 0.4, "fail_status": 429}, "status_429"),
    "connection reset mid-response": ({"reset_rate": 0.4}, "reset"),
    "truncated JSON": ({"malformed_rate": 0.4}, "malformed"),
    "slower than the timeout": ({"slow_rate": 0.3, "slow_ms": 600}, "slow"),
    "/pooling with a row too many": ({"wrong_rows_rate": 0.6}, "wrong_rows"),
    "embeddings of half the dimension": ({"wrong_dim_rate": 0.6}, "wrong_dim"),
}


@pytest.mark.parametrize("name", list(FAULTS))
def test_each_fault_is_retried_and_the_answers_are_the_fault_free_ones(
    name: str, expected: tuple[list[Any], ...]
) -> None:
    faults, kind = FAULTS[name]
    with _faulted(**faults) as srv:
        got = asyncio.run(_workload(srv.url, srv.base_url, timeout_s=0.3))
        stats = srv.stats()
    assert stats["faults"].get(kind, 0) > 0, stats["faults"]  # injected...
    assert got == expected  # ...and survived: the same answers as without faults


def test_a_replica_that_dies_and_comes_back(expected: tuple[list[Any], ...]) -> None:
    """The server drops every connection and refuses new ones for 0.3 s, mid-run."""
    with _faulted(latency_ms=100) as srv:

        async def run() -> tuple[list[Any], ...]:
            work = asyncio.create_task(
                _workload(srv.url, srv.base_url, backoff=Backoff(0.05, 0.2, 1.0))
            )
            await asyncio.sleep(0.05)  # the first requests are in flight
            await asyncio.to_thread(srv.outage, 0.3)
            return await work

        got = asyncio.run(run())
        assert srv.stats()["faults"]["outage"] == 1
    assert got == expected


def test_outages_from_the_config_come_back_on_the_same_port() -> None:
    with _faulted(outage_every_s=0.2, outage_s=0.2) as srv:
        policy = ChatPolicy(
            srv.base_url, "sim-policy", max_model_len=4096, backoff=Backoff(0.05, 0.1, 1.0)
        )
        deadline = time.monotonic() + 1.0
        answered = 0
        while time.monotonic() < deadline:
            answered += len(policy.generate_sync([{"role": "user", "content": "1+1?"}]).samples)
        assert srv.stats()["faults"]["outage"] >= 2 and answered > 0


@pytest.mark.parametrize(
    ("faults", "match"),
    [
        ({"fail_rate": 1.0, "burst_len": 1000}, r"HTTP 503: Service Unavailable.*3 attempts"),
        ({"fail_rate": 1.0, "burst_len": 1000, "fail_status": 429}, r"HTTP 429.*3 attempts"),
        ({"malformed_rate": 1.0}, r"not a JSON object \(gave up after 3 attempts\)"),
        ({"reset_rate": 1.0}, r"failed: DisconnectedError.*3 attempts"),
        ({"slow_rate": 1.0, "slow_ms": 400}, r"timed out.*read timeout 0.1s.*3 attempts"),
    ],
)
def test_exhausted_retries_are_one_clear_server_error(faults: dict[str, Any], match: str) -> None:
    with _faulted(**faults) as srv:
        policy = ChatPolicy(
            srv.base_url,
            "sim-policy",
            max_model_len=4096,
            backoff=FAST,
            max_retries=2,
            timeout_s=0.1,
        )
        with pytest.raises(ServerError, match=match) as info:
            policy.generate_sync([{"role": "user", "content": "1+1?"}])
    assert srv.base_url in str(info.value) and "\n" not in str(info.value)


def test_exhausted_retries_on_bad_shapes_name_the_shape() -> None:
    with _faulted(wrong_rows_rate=1.0, wrong_dim_rate=1.0) as srv:
        prm = PoolingPRM(srv.url, "sim-prm", backoff=FAST, max_retries=1)
        with pytest.raises(ServerError, match=r"3 step rows for 2 steps \(gave up after 2"):
            prm.score_sync(PROBLEMS[0], STEPS)
        embedder = OpenAIEmbedder(srv.base_url, "sim-embed", backoff=FAST, max_retries=1, dim=256)
        with pytest.raises(ServerError, match=r"dimension 128, but earlier ones had 256"):
            embedder.embed_sync(["a"])


def test_a_dead_server_is_unavailable_with_the_command_to_start_one() -> None:
    with _faulted() as srv:
        srv.outage(30)
        policy = ChatPolicy(
            srv.base_url, "sim-policy", max_model_len=4096, backoff=FAST, max_retries=2
        )
        with pytest.raises(ServerUnavailableError, match=r"cannot reach the policy server.*3 at"):
            policy.generate_sync([{"role": "user", "content": "1+1?"}])


def test_backoff_is_exponential_with_jitter_and_bounded() -> None:
    with _faulted(fail_rate=1.0, burst_len=1000, fail_status=503) as srv:
        waits: list[float] = []
        policy = ChatPolicy(
            srv.base_url,
            "sim-policy",
            max_model_len=4096,
            max_retries=6,
            backoff=Backoff(initial_s=0.01, max_s=0.08, retry_after_cap_s=1.0),
        )

        async def record(seconds: float) -> None:
            waits.append(seconds)

        policy._http._sleep = record  # type: ignore[method-assign]
        with pytest.raises(ServerError):
            policy.generate_sync([{"role": "user", "content": "1+1?"}])
    assert len(waits) == 6  # bounded: max_retries waits, then the error
    assert all(0.0 <= w <= 0.08 + 0.01 for w in waits)
    assert waits[2] > waits[0] and waits[-1] >= 0.04  # grows...
    assert len({round(w, 6) for w in waits}) == len(waits)  # ...with jitter


# -- a whole run: 100 problems, with and without 20 % transient failures --------------------

N_PROBLEMS = 100
TRANSIENT = {
    "fail_rate": 0.09,  # bursts of 2: ~16 % of requests answered 503 (Retry-After)
    "retry_after_s": 0.001,
    "reset_rate": 0.015,
    "malformed_rate": 0.015,
    "slow_rate": 0.01,  # slower than the clients' 1 s timeout
    "slow_ms": 1200,
    "wrong_rows_rate": 0.05,  # of /pooling responses
    "wrong_dim_rate": 0.05,  # of /v1/embeddings responses
}


def _run_all(srv: Any) -> list[dict[str, Any]]:
    from langgraph_tts.context import SolveContext
    from langgraph_tts.solve import Solver

    opts: dict[str, Any] = {"backoff": Backoff(0.01, 0.1, 0.1), "max_retries": 8, "timeout_s": 1}
    ctx = SolveContext(
        strategy="dora",
        budget=4,
        seed=1,
        base_url=srv.base_url,
        model="sim-policy",
        prm_url=srv.url,
        prm_model="sim-prm",
        embed_url=srv.base_url,
        embed_model="sim-embed",
    )
    problems = make_problems(N_PROBLEMS, seed=5)

    async def run() -> list[dict[str, Any]]:
        policy = ChatPolicy(srv.base_url, "sim-policy", max_model_len=32768, **opts)
        prm = PoolingPRM(srv.url, "sim-prm", **opts)
        embedder = OpenAIEmbedder(srv.base_url, "sim-embed", dim=256, **opts)
        solver = Solver(ctx, policy=policy, prm=prm, embedder=embedder)

        async def one(p: Any) -> dict[str, Any]:
            try:
                out = await solver(p.text)
            except Exception as err:  # counted as lost below
                return {"id": p.id, "error": repr(err)}
            return {"id": p.id, "answer": out["answer"], "correct": is_correct(p, out["answer"])}

        try:
            return await asyncio.gather(*(one(p) for p in problems))
        finally:
            await asyncio.gather(policy.aclose(), prm.aclose(), embedder.aclose())

    return asyncio.run(run())


def test_100_problems_with_20_percent_transient_failures_answer_every_problem(
    record_property: Any,
) -> None:
    with start_server(SimConfig(seed=5)) as srv:
        clean_rows = _run_all(srv)
        clean_requests = sum(srv.stats()["requests"].values())
    with start_server(SimConfig(seed=5, **TRANSIENT)) as srv:
        faulty_rows = _run_all(srv)
        stats = srv.stats()
    injected = sum(stats["faults"].values())  # at most one per attempt
    # responses delivered intact and in time (the slow ones came after the 1 s timeout)
    served = sum(stats["requests"].values()) - stats["faults"].get("slow", 0)
    share = injected / (injected + served)  # of the attempts the clients made
    lost = [r for r in faulty_rows if "error" in r or r.get("answer") is None]
    acc_clean = sum(r.get("correct", False) for r in clean_rows) / N_PROBLEMS
    acc_faulty = sum(r.get("correct", False) for r in faulty_rows) / N_PROBLEMS
    noise = 2 * math.sqrt(acc_clean * (1 - acc_clean) / N_PROBLEMS)
    summary = {
        "faults": stats["faults"],
        "injected": injected,
        "requests_answered": served,
        "requests_answered_clean": clean_requests,
        "fault_share": round(share, 3),
        "lost": len(lost),
        "accuracy_clean": acc_clean,
        "accuracy_faulty": acc_faulty,
    }
    record_property("faults_run", json.dumps(summary))
    print("faults run:", json.dumps(summary))
    assert share >= 0.2, summary  # at least 20 % of requests failed transiently
    assert not lost, lost[:3]
    assert all("error" not in r and r["answer"] is not None for r in clean_rows)
    assert abs(acc_faulty - acc_clean) <= noise, summary
    # retries resend the same seeded request, so the answers are the fault-free ones exactly
    assert [r["answer"] for r in faulty_rows] == [r["answer"] for r in clean_rows]


# -- `langgraph-tts eval` as a black box ----------------------------------------------------


def _serve(port: int, *flags: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "langgraph_tts.cli", "sim-server", "--port", str(port), *flags],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert "listening" in line, proc.stderr.read() if proc.stderr else line
    return proc


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _eval(port: int, out: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LANGSMITH_TRACING": "false"}
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "langgraph_tts.cli",
            "eval",
            "--dataset",
            "sim:default:0",
            "--limit",
            "8",
            "--out",
            str(out),
            "--strategy",
            "cot",
            "--seed",
            "1",
            "--base-url",
            f"http://127.0.0.1:{port}/v1",
            "--model",
            "sim-policy",
            "--quiet",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )


def _summary(out: Path) -> dict[str, Any]:
    groups = json.loads((out / "summary.json").read_text())["groups"]
    assert len(groups) == 1
    group: dict[str, Any] = groups[0]
    return group


def _rows(out: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in (out / "results.jsonl").read_text().splitlines()]


def test_eval_records_failed_problems_goes_on_and_retries_them_next_run(tmp_path: Path) -> None:
    """Run 1: the server's 4th request starts a 503 burst that never ends (seed 0 draws 3
    healthy requests first), so 3 problems are answered and 5 fail past their retries. The
    run finishes and records each failure with its error. Run 2, against a healthy server,
    retries exactly the 5 and keeps the 3."""
    port = _free_port()
    out = tmp_path / "run"
    server = _serve(port, "--seed", "0", "--fail-rate", "0.3", "--burst-len", "1000")
    try:
        first = _eval(port, out)
    finally:
        server.terminate()
        server.wait(timeout=10)
    assert first.returncode == 0, first.stderr
    assert "Traceback" not in first.stderr
    rows = _rows(out)
    done = [r for r in rows if not r["error"]]
    failed = [r for r in rows if r["error"]]
    assert len(rows) == 8 and len(done) == 3, rows
    assert all(
        "HTTP 503" in r["error"] and "gave up after 6 attempts" in r["error"] for r in failed
    )
    assert _summary(out)["errors"] == 5
    server = _serve(port, "--seed", "0")
    try:
        second = _eval(port, out)
    finally:
        server.terminate()
        server.wait(timeout=10)
    assert second.returncode == 0, second.stderr
    assert (_summary(out)["n"], _summary(out)["errors"]) == (8, 0)
    rows = {r["id"]: r for r in _rows(out)}  # one row per cell: failures were replaced
    assert len(rows) == 8
    assert all(rows[r["id"]] == r for r in done), "finished rows are never rewritten"
    assert all(not rows[r["id"]]["error"] and rows[r["id"]]["prediction"] for r in failed)
