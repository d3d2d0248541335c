"""`langgraph dev` serves solve_math offline; a run through its HTTP API answers a problem."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

pytestmark = [pytest.mark.studio, pytest.mark.e2e, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def studio(sim: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    cli = Path(sys.executable).parent / "langgraph"
    if not cli.exists() and shutil.which("langgraph") is None:
        pytest.fail("langgraph-cli[inmem] is part of the dev extra; install with make test")
    port = _free_port()
    # the repo's langgraph.json, with its .env swapped for this test's simulator
    config = json.loads((ROOT / "langgraph.json").read_text())
    config["dependencies"] = [str(ROOT)]
    config["graphs"] = {k: str(ROOT / v.lstrip("./")) for k, v in config["graphs"].items()}
    config["env"] = {
        "LANGSMITH_TRACING": "false",
        "LANGGRAPH_TTS_BASE_URL": sim.base_url,
        "LANGGRAPH_TTS_MODEL": "sim-policy",
        "LANGGRAPH_TTS_PRM_URL": sim.url,
        "LANGGRAPH_TTS_PRM_MODEL": "sim-prm",
        "LANGGRAPH_TTS_PRM_TEMPLATE": "qwen2.5",
        "LANGGRAPH_TTS_EMBED_URL": sim.base_url,
        "LANGGRAPH_TTS_EMBED_MODEL": "sim-embed",
    }
    workdir = tmp_path_factory.mktemp("studio")
    (workdir / "langgraph.json").write_text(json.dumps(config))
    env = {
        **os.environ,
        "LANGGRAPH_CLI_NO_ANALYTICS": "1",
        "LANGGRAPH_NO_VERSION_CHECK": "1",
        "LANGSMITH_TRACING": "false",
    }
    log = workdir / "langgraph-dev.log"
    with log.open("w") as sink:
        proc = subprocess.Popen(
            [
                str(cli if cli.exists() else "langgraph"),
                "dev",
                "--no-browser",
                "--no-reload",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--config",
                str(workdir / "langgraph.json"),
            ],
            cwd=workdir,
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 90
            while time.monotonic() < deadline:
                if proc.poll() is not None:
                    pytest.fail(f"langgraph dev exited:\n{log.read_text()[-3000:]}")
                try:
                    if httpx.get(url + "/ok", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                time.sleep(0.3)
            else:
                pytest.fail(f"langgraph dev did not start:\n{log.read_text()[-3000:]}")
            yield url
        finally:
            _stop(proc)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=15)
            return
        except subprocess.TimeoutExpired:
            continue


def test_solve_math_is_served_and_answers(studio: str, sim: Any) -> None:
    with httpx.Client(base_url=studio, timeout=120) as client:
        found = client.post("/assistants/search", json={"graph_id": "solve_math"}).json()
        assert found and found[0]["graph_id"] == "solve_math"
        schemas = client.get(f"/assistants/{found[0]['assistant_id']}/schemas").json()
        assert "strategy" in str(schemas), "the context form shows the strategy"
        run = client.post(
            "/runs/wait",
            json={
                "assistant_id": "solve_math",
                "input": {"problem": "What is the sum of the first 10 positive odd numbers?"},
                "context": {
                    "strategy": "best_of_n",
                    "budget": 4,
                    "base_url": sim.base_url,
                    "model": "sim-policy",
                    "prm_url": sim.url,
                    "prm_model": "sim-prm",
                },
            },
        )
        assert run.status_code == 200, run.text
        out = run.json()
        assert out["answer"] is not None
        assert out["result"]["strategy"] == "best_of_n"
        assert out["ledger"]["samples"] == 4


def test_default_context_comes_from_env_and_threads_work(studio: str) -> None:
    with httpx.Client(base_url=studio, timeout=120) as client:
        thread = client.post("/threads", json={}).json()["thread_id"]
        run = client.post(
            f"/threads/{thread}/runs/wait",
            json={
                "assistant_id": "solve_math",
                "input": {"problem": "What is 7 times 6?"},
                "context": {"strategy": "rebase", "budget": 4},
            },
        )
        assert run.status_code == 200, run.text
        assert run.json()["answer"] is not None
        state = client.get(f"/threads/{thread}/state").json()
        assert state["values"]["result"]["strategy"] == "rebase"


GRAPHS = ("solve_math", "search", "scale", "compute_optimal")


@pytest.mark.parametrize("graph_id", GRAPHS)
def test_every_graph_shows_input_output_and_context_schemas(studio: str, graph_id: str) -> None:
    with httpx.Client(base_url=studio, timeout=120) as client:
        found = client.post("/assistants/search", json={"graph_id": graph_id}).json()
        schemas = client.get(f"/assistants/{found[0]['assistant_id']}/schemas").json()
    for key in ("input_schema", "output_schema", "context_schema"):
        assert schemas[key], f"{graph_id}: {key} was not built"
    assert "problem" in schemas["input_schema"]["properties"]
    assert {"answer", "result", "ledger"} <= set(schemas["output_schema"]["properties"])
    budget = schemas["context_schema"]["properties"]["budget"]
    assert budget["default"] == 16 and "Rollout budget" in budget["description"]


def _failed_run(studio: str, context: dict[str, Any]) -> dict[str, Any]:
    with httpx.Client(base_url=studio, timeout=120) as client:
        run = client.post(
            "/runs/wait",
            json={
                "assistant_id": "solve_math",
                "input": {"problem": "What is 7 times 6?"},
                "context": context,
            },
        )
    assert run.status_code == 200, run.text
    error: dict[str, Any] = run.json()["__error__"]
    return error


def test_a_typo_in_the_run_context_fails_the_run_naming_the_setting(studio: str) -> None:
    error = _failed_run(studio, {"budgett": 4})
    assert error["error"] == "ConfigError"
    assert error["message"].startswith("unknown setting 'budgett'; did you mean 'budget'?")
    error = _failed_run(studio, {"budget": 0})
    assert error["message"] == "invalid setting: budget: Input should be greater than 0"


def test_an_unreachable_model_server_gives_the_cli_message(studio: str) -> None:
    error = _failed_run(studio, {"base_url": "http://127.0.0.1:9/v1", "strategy": "cot"})
    assert error["error"] == "ServerUnavailableError"
    assert error["message"].startswith("cannot reach the policy server at http://127.0.0.1:9/v1")
    assert "langgraph-tts sim-server --port 9" in error["message"]


def test_the_studio_guide_api_block_runs(studio: str, capsys: pytest.CaptureFixture[str]) -> None:
    """docs/studio.md's Python block against `langgraph dev`: a run, the custom events of the
    inner search, and stepping through the search graph with the context sent on resume."""
    page = (ROOT / "docs" / "studio.md").read_text(encoding="utf-8")
    code = next(b for b in re.findall(r"```python\n(.*?)```", page, re.S) if "get_sync_client" in b)
    namespace: dict[str, Any] = {}
    exec(code.replace("http://127.0.0.1:2024", studio), namespace)
    printed = capsys.readouterr().out.splitlines()
    assert namespace["out"]["result"]["strategy"] == "beam"
    assert any(
        line.startswith("custom|search:") and line.endswith(" iteration") for line in printed
    )
    steps = [re.fullmatch(r"\d+ (\[.*\])", line) for line in printed]
    frontiers = [json.loads(m.group(1)) for m in steps if m]
    # the last allocation hands out nothing; every other one the budget of the resumed context
    assert len(frontiers) >= 3 and frontiers[-1] == []
    assert all(len(f) == 4 for f in frontiers[:-1]), "each resume runs with budget 4"
    assert namespace["state"]["values"]["answer"] == printed[-1]
