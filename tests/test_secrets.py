"""Secrets: an API key given as an argument or in the environment reaches the servers' headers
and nowhere else: not logs (DEBUG, including httpx/httpcore), stdout/stderr, results files,
summaries, streamed events, graph state or checkpoints.

The key is planted, everything the run produced is collected as text, and the key (and its
distinctive tail) is searched for in all of it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import pickle
import traceback
from pathlib import Path
from typing import Any

import pytest
from conftest import sim_settings

from langgraph_tts import cli
from langgraph_tts.context import ScaleContext, SearchContext, SolveContext

pytestmark = pytest.mark.e2e

ARG_KEY = "sk-PLANTED-arg-7f3c9e1d5b"
ENV_KEY = "sk-PLANTED-env-2a8b4c6d0e"
KEYS = (ARG_KEY, ENV_KEY)
TAILS = ("7f3c9e1d5b", "2a8b4c6d0e")
PROBLEM = "What is the sum of the first 10 positive odd numbers?"


def assert_no_key(label: str, *texts: Any) -> None:
    for text in texts:
        blob = text if isinstance(text, str) else repr(text)
        if isinstance(text, bytes):
            blob = text.decode("utf-8", "replace")
        for needle in (*KEYS, *TAILS):
            assert needle not in blob, f"API key leaked into {label}"


def model_flags(sim: Any) -> list[str]:
    s = sim_settings(sim)
    return [
        "--base-url",
        s["base_url"],
        "--model",
        s["model"],
        "--prm-url",
        s["prm_url"],
        "--prm-model",
        s["prm_model"],
        "--embed-url",
        s["embed_url"],
        "--embed-model",
        s["embed_model"],
    ]


@pytest.fixture
def debug_logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG)
    for name in ("httpx", "httpcore", "aiohttp", "langgraph_tts", "openai"):
        caplog.set_level(logging.DEBUG, logger=name)  # restored after the test
    return caplog


def _logs(caplog: pytest.LogCaptureFixture) -> str:
    lines = [f"{r.name} {r.levelname} {r.getMessage()} {r.args!r}" for r in caplog.records]
    return "\n".join(lines) + caplog.text


@pytest.mark.parametrize("source", ["argument", "environment"])
def test_cli_solve_and_eval_never_show_the_key(
    sim: Any,
    tmp_path: Path,
    source: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    debug_logs: pytest.LogCaptureFixture,
) -> None:
    if source == "argument":
        key_flags = ["--api-key", ARG_KEY]
        monkeypatch.delenv("LANGGRAPH_TTS_API_KEY", raising=False)
    else:
        key_flags = []
        monkeypatch.setenv("LANGGRAPH_TTS_API_KEY", ENV_KEY)
    flags = [*model_flags(sim), *key_flags, "--debug"]
    assert cli.main(["solve", PROBLEM, "--strategy", "dora", "--budget", "4", *flags]) == 0
    assert (
        cli.main(["solve", PROBLEM, "--strategy", "rebase", "--budget", "4", "--json", *flags]) == 0
    )
    out_dir = tmp_path / "run"
    code = cli.main(
        ["eval", "--dataset", "gsm8k", "--limit", "2", "--strategy", "best_of_n",
         "--budget", "4", "--out", str(out_dir), *flags]
    )  # fmt: skip
    assert code == 0
    table = tmp_path / "table.json"
    code = cli.main(
        ["calibrate", "--dataset", "sim:default", "--limit", "4", "--budgets", "2",
         "--strategies", "best_of_n,beam", "--bins", "2", "--seed", "0", "--out", str(table),
         "--runs", str(tmp_path / "runs"), "--quiet", *flags]
    )  # fmt: skip
    assert code == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out.splitlines()[1])["answer"] is not None  # the runs worked
    files = {str(p): p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    names = {Path(name).name for name in files}
    assert {"results.jsonl", "summary.json", "table.json"} <= names
    assert_no_key("stdout", captured.out)
    assert_no_key("stderr", captured.err)
    assert_no_key("logs", _logs(debug_logs))
    for name, data in files.items():
        assert_no_key(f"results file {name}", data)


def test_cli_errors_never_show_the_key(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    debug_logs: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("LANGGRAPH_TTS_API_KEY", ENV_KEY)
    dead = "http://127.0.0.1:9/v1"
    assert cli.main(["solve", PROBLEM, "--base-url", dead, "--api-key", ARG_KEY]) != 0
    assert cli.main(["solve", PROBLEM, "--set", f"budget={ARG_KEY[:2]}"]) != 0
    assert cli.main(["solve", PROBLEM, "--set", "api_key=12"]) != 0  # wrong type for the key
    with pytest.raises(Exception) as raised:  # --debug: the traceback a user pastes in a bug
        cli.main(["solve", PROBLEM, "--base-url", dead, "--api-key", ARG_KEY, "--debug"])
    tb = "".join(traceback.format_exception(raised.value))
    captured = capsys.readouterr()
    assert_no_key("error output", captured.out, captured.err)
    assert_no_key("traceback", tb)
    assert_no_key("logs", _logs(debug_logs))


def test_contexts_hide_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LANGGRAPH_TTS_API_KEY", ENV_KEY)
    for ctx in (SearchContext(), ScaleContext(), SearchContext(api_key=ARG_KEY)):
        assert ctx.api_key in KEYS  # it is there, for the clients ...
        assert_no_key("context repr", repr(ctx), str(ctx))  # ... but never shown


@pytest.mark.parametrize("graph_kind", ["search", "solve"])
def test_graph_state_stream_and_checkpoints_never_hold_the_key(
    sim: Any,
    graph_kind: str,
    monkeypatch: pytest.MonkeyPatch,
    debug_logs: pytest.LogCaptureFixture,
) -> None:
    from langgraph.checkpoint.memory import InMemorySaver

    from langgraph_tts.search.graph import create_search_graph
    from langgraph_tts.solve import create_solve_graph

    monkeypatch.setenv("LANGGRAPH_TTS_API_KEY", ENV_KEY)
    saver = InMemorySaver()
    settings = sim_settings(sim, budget=4, api_key=ARG_KEY)
    if graph_kind == "search":
        graph = create_search_graph("dora", checkpointer=saver)
        context: Any = SearchContext(**settings)
    else:
        graph = create_solve_graph(checkpointer=saver)
        context = SolveContext(strategy="rebase", **settings)
    config = {"configurable": {"thread_id": f"secrets-{graph_kind}"}}

    async def run() -> list[Any]:
        events = []
        async for event in graph.astream(
            {"problem": PROBLEM},
            config,
            context=context,
            stream_mode=["values", "updates", "custom", "debug", "tasks", "checkpoints"],
            subgraphs=True,
        ):
            events.append(event)
        return events

    events = asyncio.run(run())
    state = graph.get_state(config)
    history = list(graph.get_state_history(config))
    assert state.values.get("answer") is not None  # the run worked
    assert_no_key("streamed events", events)
    assert_no_key("final state", state)
    assert_no_key("state history", history)
    assert_no_key("checkpoints", saver.storage, saver.writes, saver.blobs)
    assert_no_key("pickled checkpoints", pickle.dumps((dict(saver.storage), dict(saver.writes))))
    assert_no_key("logs", _logs(debug_logs))


def _holds(obj: Any, secret: str, depth: int = 3) -> bool:
    """Whether `obj` or an attribute of it (a few levels down) is `secret`."""
    if obj == secret:
        return True
    if depth == 0 or not hasattr(obj, "__dict__"):
        return False
    return any(_holds(value, secret, depth - 1) for value in vars(obj).values())


def test_the_key_reaches_the_clients_and_the_search_would_find_a_leak(sim: Any) -> None:
    """Controls: the planted key is really handed to the HTTP clients (so the tests above test
    something), and `assert_no_key` does find a key in streamed events and checkpoints."""
    from langgraph.checkpoint.memory import InMemorySaver

    from langgraph_tts.resources import resolve_clients
    from langgraph_tts.search.graph import create_search_graph

    context = SearchContext(**sim_settings(sim, budget=2, api_key=ARG_KEY))
    clients = resolve_clients(context, need_embedder=True)
    assert _holds(clients.policy, ARG_KEY) and _holds(clients.reward, ARG_KEY)

    saver = InMemorySaver()
    graph = create_search_graph("best_of_n", checkpointer=saver)
    config = {"configurable": {"thread_id": "control"}}

    async def run() -> list[Any]:
        problem = {"problem": f"{PROBLEM} {ARG_KEY}"}
        return [e async for e in graph.astream(problem, config, context=context)]

    events = asyncio.run(run())
    with pytest.raises(AssertionError, match="streamed events"):
        assert_no_key("streamed events", events)
    with pytest.raises(AssertionError, match="checkpoints"):
        assert_no_key("checkpoints", saver.storage, saver.writes, saver.blobs)


@pytest.mark.studio
@pytest.mark.slow
def test_studio_state_and_stored_checkpoints_never_hold_the_key(sim: Any, tmp_path: Path) -> None:
    """`langgraph dev` with the key in its environment (the documented way for Studio): the
    streamed run, thread state, history, thread and run records, the server log and the files
    it persists (its checkpoints) hold no key."""
    import os
    import shutil
    import signal
    import socket
    import subprocess
    import sys
    import time

    import httpx

    root = Path(__file__).resolve().parents[1]
    cli_path = Path(sys.executable).parent / "langgraph"
    if not cli_path.exists() and shutil.which("langgraph") is None:
        pytest.fail("langgraph-cli[inmem] is part of the dev extra; install with make test")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    config = json.loads((root / "langgraph.json").read_text())
    config["dependencies"] = [str(root)]
    config["graphs"] = {k: str(root / v.lstrip("./")) for k, v in config["graphs"].items()}
    config["env"] = {
        "LANGSMITH_TRACING": "false",
        "LANGGRAPH_TTS_BASE_URL": sim.base_url,
        "LANGGRAPH_TTS_MODEL": "sim-policy",
        "LANGGRAPH_TTS_PRM_URL": sim.url,
        "LANGGRAPH_TTS_PRM_MODEL": "sim-prm",
        "LANGGRAPH_TTS_EMBED_URL": sim.base_url,
        "LANGGRAPH_TTS_EMBED_MODEL": "sim-embed",
        "LANGGRAPH_TTS_API_KEY": ENV_KEY,
    }
    (tmp_path / "langgraph.json").write_text(json.dumps(config))
    env = {
        **os.environ,
        "LANGGRAPH_CLI_NO_ANALYTICS": "1",
        "LANGGRAPH_NO_VERSION_CHECK": "1",
        "LANGSMITH_TRACING": "false",
    }
    env.pop("LANGGRAPH_TTS_API_KEY", None)
    log = tmp_path / "langgraph-dev.log"
    command = [str(cli_path if cli_path.exists() else "langgraph"), "dev", "--no-browser"]
    command += ["--no-reload", "--host", "127.0.0.1", "--port", str(port)]
    command += ["--config", str(tmp_path / "langgraph.json")]
    texts: dict[str, str] = {}
    with log.open("w") as sink:
        proc = subprocess.Popen(
            command, cwd=tmp_path, env=env, stdout=sink, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 90
            while time.monotonic() < deadline:
                assert proc.poll() is None, log.read_text()[-3000:]
                try:
                    if httpx.get(url + "/ok", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                time.sleep(0.3)
            with httpx.Client(base_url=url, timeout=120) as client:
                runs = (("solve_math", "rebase"), ("search", "dora"))
                for graph, strategy in runs:
                    thread = client.post("/threads", json={}).json()["thread_id"]
                    body = {
                        "assistant_id": graph,
                        "input": {"problem": PROBLEM},
                        "context": {"strategy": strategy, "budget": 4},
                        "stream_mode": ["values", "updates", "custom", "debug"],
                    }
                    stream = client.post(f"/threads/{thread}/runs/stream", json=body)
                    assert stream.status_code == 200, stream.text[-2000:]
                    state = client.get(f"/threads/{thread}/state")
                    assert state.json()["values"].get("answer") is not None  # the run worked
                    texts[f"{graph} stream"] = stream.text
                    texts[f"{graph} state"] = state.text
                    history = client.post(f"/threads/{thread}/history", json={"limit": 1000})
                    texts[f"{graph} history"] = history.text
                    texts[f"{graph} thread"] = client.get(f"/threads/{thread}").text
                    texts[f"{graph} runs"] = client.get(f"/threads/{thread}/runs").text
        finally:
            for sig in (signal.SIGTERM, signal.SIGKILL):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, sig)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=15)
                    break
    texts["server log"] = log.read_text()
    for path in tmp_path.rglob("*"):  # the server's persisted threads and checkpoints
        if path.is_file() and path.name != "langgraph.json":
            texts[str(path)] = path.read_bytes().decode("latin-1")
    assert any(".langgraph_api" in name for name in texts), "the server persisted nothing?"
    for label, text in texts.items():
        assert_no_key(label, text)
