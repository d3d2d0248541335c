"""The simulator's throughput machinery over real HTTP on 127.0.0.1: `sim-server --workers K`
(one port, shared counters), base64 embeddings end to end, and the caches that must not
change a single output bit."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import httpx
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from langgraph_tts.clients import OpenAIEmbedder
from langgraph_tts.sim import SimConfig, start_server
from langgraph_tts.sim.embed import _WORD_RE, _bag_of_words, _normalise, _unit, embed_text
from langgraph_tts.sim.engine import STEP_TAG, SimEngine, SimStats, _tagged_tokens
from langgraph_tts.sim.inprocess import SimEmbedder
from langgraph_tts.sim.protocol import _piece_id, cached_count_tokens, token_ids, token_pieces
from langgraph_tts.sim.world import count_tokens, make_problems

pytestmark = pytest.mark.e2e

TEXTS = [
    "## Step 1: Set up\nWe use similar triangles, which gives $12$.\n\n",
    "## Step 1: Set up\nWe use similar triangles, which gives $12$.\n\n## Step 2: Scale\nThus 4.",
    "no direction keyword here at all",
]


@pytest.fixture(scope="module")
def workers() -> Iterator[str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "langgraph_tts.cli", "sim-server", "--port", "0", "--workers", "2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("simulator listening on http://127.0.0.1:"), line
        assert line.rstrip().endswith("2 worker processes)")
        yield line.split()[3]
    finally:
        proc.terminate()
        assert proc.wait(timeout=10) == 0


def _embed_on_a_new_connection(url: str, text: str) -> str:
    """One embedding request on its own connection; the id of the worker that answered."""
    with httpx.Client() as client:
        resp = client.post(url + "/v1/embeddings", json={"input": [text, text]})
    assert resp.status_code == 200
    return resp.headers["x-sim-worker"]


def _until_both_workers_answered(url: str, text: str) -> int:
    """Requests on new connections until both workers answered one; how many were sent."""
    seen: list[str] = []
    while len(set(seen)) < 2:
        seen.append(_embed_on_a_new_connection(url, text))
        assert len(seen) < 200, "one worker never got a connection"
    return len(seen)


def test_workers_share_one_port_and_one_set_of_counters(workers: str) -> None:
    for _ in range(2):  # the second round checks that a reset through one worker reset both
        assert httpx.post(workers + "/sim/reset").status_code == 200
        sent = _until_both_workers_answered(workers, "a b c")
        for _ in range(10):  # each read on a new connection, so both workers report
            stats = httpx.get(workers + "/sim/stats").json()
            assert stats["requests"] == {"/v1/embeddings": sent}
            assert stats["embed_inputs"] == 2 * sent and stats["embed_tokens"] == 6 * sent


def test_workers_answer_like_one_process(workers: str) -> None:
    body = {
        "messages": [{"role": "user", "content": make_problems(1)[0].text}],
        "n": 3,
        "seed": 5,
        "stop": ["\n\n"],
        "max_tokens": 256,
    }
    with start_server(SimConfig()) as single:
        expected = httpx.post(single.base_url + "/chat/completions", json=body).json()
    for _ in range(6):
        got = httpx.post(workers + "/v1/chat/completions", json=body).json()
        assert got["choices"] == expected["choices"] and got["usage"] == expected["usage"]


def test_bad_worker_counts_are_refused() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "langgraph_tts.cli", "sim-server", "--port", "0", "--workers", "0"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2 and "workers" in proc.stderr


def test_ctrl_c_stops_every_worker() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "langgraph_tts.cli", "sim-server", "--port", "0", "--workers", "2"],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    url = proc.stdout.readline().split()[3]
    assert httpx.get(url + "/health").status_code == 200
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=10) == 0
    with pytest.raises(httpx.ConnectError):
        httpx.get(url + "/health", timeout=2)


def test_shared_stats_report_like_local_stats() -> None:
    local, shared = SimStats(), SimStats(shared=True)
    for stats in (local, shared):
        stats.error(404)
        stats.fault("slow")
    assert shared.snapshot() == local.snapshot()
    assert local.snapshot()["errors"] == {"404": 1} and local.snapshot()["requests"] == {}


# --- base64 embeddings over HTTP -----------------------------------------------------------------


async def test_embedder_reads_base64_vectors_from_the_simulator() -> None:
    with start_server(SimConfig()) as sim:
        out = await OpenAIEmbedder(sim.base_url, "sim-embed").embed(TEXTS)
        assert sim.stats()["requests"] == {"/v1/embeddings": 1}
    floats = (await SimEmbedder(SimConfig()).embed(TEXTS)).vectors
    got, want = np.array(out.vectors), np.array(floats)
    assert np.array_equal(got, want.astype(np.float32).astype(np.float64))  # float32, no loss
    assert out.usage.prompt_tokens == sum(count_tokens(t) for t in TEXTS)


class _FloatsOnly(BaseHTTPRequestHandler):
    """An OpenAI-compatible embeddings route that refuses base64 with vLLM's 400."""

    protocol_version = "HTTP/1.1"
    formats: ClassVar[list[str]] = []

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.formats.append(body["encoding_format"])
        if body["encoding_format"] == "base64":
            status, out = 400, {"error": {"message": "base64 is not supported", "code": 400}}
        else:
            data = [{"index": i, "embedding": [0.5, float(i)]} for i in range(len(body["input"]))]
            status, out = 200, {"data": data, "usage": {"prompt_tokens": 3}}
        raw = json.dumps(out).encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)


async def test_embedder_falls_back_to_floats_once_a_server_refuses_base64() -> None:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _FloatsOnly)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        emb = OpenAIEmbedder(f"http://127.0.0.1:{httpd.server_address[1]}/v1", "e")
        first = await emb.embed(["a", "b"])
        second = await emb.embed(["c"])
    finally:
        httpd.shutdown()
        httpd.server_close()
    assert first.vectors == [[0.5, 0.0], [0.5, 1.0]] and second.vectors == [[0.5, 0.0]]
    assert _FloatsOnly.formats == ["base64", "float", "float"]


# --- caches give the same bits as the plain computation ------------------------------------------

_text = st.text(alphabet=st.sampled_from(list("ab1 \n\t<>_$.,Σσ")), max_size=60)


@settings(max_examples=300, deadline=None)
@given(_text)
def test_chunked_token_counts_and_ids_equal_the_plain_ones(text: str) -> None:
    assert cached_count_tokens(text) == count_tokens(text)
    assert token_ids(text) == [_piece_id(p) for p in token_pieces(text)]
    tagged = STEP_TAG.join([text, text[::-1], ""]) + STEP_TAG
    assert _tagged_tokens(tagged) == count_tokens(tagged)


def _plain_bag_of_words(text: str, dim: int, seed: int) -> np.ndarray:
    words = _WORD_RE.findall(text.lower())
    if not words:
        return _unit("empty", "", dim, seed)
    acc = np.zeros(dim)
    for w in words:
        acc += _unit("word", w, dim, seed)
    return _normalise(acc)


@settings(max_examples=200, deadline=None)
@given(st.lists(_text, min_size=1, max_size=6))
def test_incremental_bag_of_words_is_bitwise_the_plain_sum(steps: list[str]) -> None:
    text = ""
    for step in steps:  # grow a solution the way a search does, prefix by prefix
        text += step + "\n\n"
        assert np.array_equal(_bag_of_words(text, 32, 0), _plain_bag_of_words(text, 32, 0))
    many = "x\n\n" * 300 + "y"  # past the cached depth: summed in one go
    assert np.array_equal(_bag_of_words(many, 32, 0), _plain_bag_of_words(many, 32, 0))
    assert embed_text(text, dim=32, seed=0).shape == (32,)


def test_cached_prm_scores_do_not_depend_on_what_was_scored_before() -> None:
    problem = make_problems(1, scenario="popular_worse")[0]
    body = {
        "messages": [{"role": "user", "content": problem.text}],
        "n": 8,
        "seed": 1,
        "max_tokens": 2000,
    }
    choices = SimEngine().handle("/v1/chat/completions", body).payload["choices"]
    solutions = [c["message"]["content"] for c in choices]
    prefixes = [s[: i + 2] for s in solutions for i in range(len(s)) if s[i : i + 2] == "\n\n"]
    warm = SimEngine()
    forward = [warm.prm_score(problem, p) for p in prefixes]
    backward = [SimEngine().prm_score(problem, p) for p in reversed(prefixes)]
    assert forward == backward[::-1]
    assert [warm.prm_score(problem, p) for p in prefixes] == forward


def test_in_thread_server_starts_inside_a_running_event_loop() -> None:
    async def main() -> int:
        with start_server(SimConfig()) as sim:
            async with httpx.AsyncClient() as client:
                return (await client.get(sim.url + "/health")).status_code

    assert asyncio.run(main()) == 200
