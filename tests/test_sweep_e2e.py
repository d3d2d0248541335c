"""Sweeps end to end: the `eval` command against two simulator replicas, killed and rerun;
other settings into the same directory; `report`; the Ray executor."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.e2e

MODELS = ["--model", "sim-policy", "--prm-model", "sim-prm", "--embed-model", "sim-embed"]
ENV = {"PATH": "/usr/bin:/bin", "LANGSMITH_TRACING": "false", "HOME": str(Path.home())}


@pytest.fixture(scope="module")
def replicas() -> Iterator[list[Any]]:
    """Two simulator replicas of one world, each request delayed a little."""
    from langgraph_tts.sim.server import SimConfig, start_server

    with (
        start_server(SimConfig(seed=0, latency_ms=15)) as a,
        start_server(SimConfig(seed=0, latency_ms=15)) as b,
    ):
        yield [a, b]


def replica_flags(servers: list[Any]) -> list[str]:
    out = [*MODELS]
    for s in servers:
        out += ["--base-url", s.base_url, "--prm-url", s.url, "--embed-url", s.base_url]
    return out


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "langgraph_tts.cli", *args]


def run(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cli(*args), capture_output=True, text=True, timeout=timeout, env=ENV)


def stored(out: Path) -> list[dict[str, Any]]:
    db = sqlite3.connect(out / "results.sqlite", timeout=30)
    try:
        return [json.loads(r) for (r,) in db.execute("SELECT row FROM cells")]
    finally:
        db.close()


def count_rows(out: Path) -> int:
    if not (out / "results.sqlite").exists():
        return 0
    db = sqlite3.connect(out / "results.sqlite", timeout=30)
    try:
        return int(db.execute("SELECT COUNT(*) FROM cells").fetchone()[0])
    except sqlite3.OperationalError:  # the schema is not there yet
        return 0
    finally:
        db.close()


def reset(servers: list[Any]) -> None:
    for s in servers:
        s.reset_stats()


def settle(servers: list[Any], quiet_s: float = 0.5, limit_s: float = 10.0) -> None:
    """Wait until the servers' request counts stop changing."""
    deadline, last = time.monotonic() + limit_s, -1
    while time.monotonic() < deadline:
        now = chat_requests(servers)
        if now == last:
            return
        last = now
        time.sleep(quiet_s)


def chat_requests(servers: list[Any]) -> int:
    return sum(s.stats()["requests"].get("/v1/chat/completions", 0) for s in servers)


def cell_of(row: dict[str, Any]) -> tuple[Any, ...]:
    return (row["dataset"], row["id"], row["strategy"], row["budget"], row["seed"])


GRID = [
    "eval",
    "--dataset",
    "math500",
    "--limit",
    "4",
    "--strategy",
    "best_of_n,rebase",
    "--budget",
    "2,4",
    "--seeds",
    "2",
    "--concurrency",
    "2",
]


def test_killed_sweep_reruns_to_one_row_per_cell_without_repeating_requests(
    replicas: list[Any], tmp_path: Path
) -> None:
    out = tmp_path / "grid"
    args = [*GRID, "--out", str(out), *replica_flags(replicas)]
    cells = 2 * 2 * 2 * 4
    proc = subprocess.Popen(
        cli(*args), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=ENV
    )
    try:
        deadline = time.monotonic() + 240
        while count_rows(out) < 8 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert proc.poll() is None, "the sweep finished before it could be killed"
        os.kill(proc.pid, signal.SIGKILL)  # no chance to clean up
    finally:
        proc.wait(timeout=30)
    before = {cell_of(r): r for r in stored(out)}
    assert 8 <= len(before) < cells
    settle(replicas)  # requests the killed process had in flight finish before the count starts
    reset(replicas)
    proc2 = run(*args, "--quiet")
    assert proc2.returncode == 0, proc2.stderr
    after = stored(out)
    assert len(after) == cells and len({cell_of(r) for r in after}) == cells
    for r in after:  # finished cells were not touched
        if cell_of(r) in before and not before[cell_of(r)].get("error"):
            assert r == before[cell_of(r)]
    # every chat request of the rerun belongs to a cell that was not finished before
    new = [r for r in after if cell_of(r) not in before or before[cell_of(r)].get("error")]
    assert chat_requests(replicas) == sum(r["ledger"]["policy_requests"] for r in new)
    assert Counter(r["replica"] for r in after).keys() == {0, 1}  # both replicas served
    # a third run makes no request at all and says so
    reset(replicas)
    proc3 = run(*args, "--quiet")
    assert proc3.returncode == 0, proc3.stderr
    assert f"resuming: {cells} of {cells}" in proc3.stderr
    assert chat_requests(replicas) == 0
    summary = json.loads((out / "summary.json").read_text())
    groups = {(g["strategy"], g["budget"]): g for g in summary["groups"]}
    assert set(groups) == {("best_of_n", 2), ("best_of_n", 4), ("rebase", 2), ("rebase", 4)}
    assert all(g["n"] == 8 and g["seeds"] == [0, 1] and g["problems"] == 4 for g in groups.values())
    jsonl = (out / "results.jsonl").read_text().splitlines()
    assert len(jsonl) == cells


def test_other_settings_never_relabel(replicas: list[Any], tmp_path: Path) -> None:
    out = tmp_path / "x"
    flags = [*replica_flags(replicas[:1]), "--quiet", "--out", str(out)]
    base = ["eval", "--dataset", "math500", "--limit", "3", "--budget", "2"]
    first = run(*base, "--strategy", "best_of_n", *flags)
    assert first.returncode == 0, first.stderr
    rows_before = {cell_of(r): r for r in stored(out)}
    second = run(*base, "--strategy", "rebase", *flags)
    assert second.returncode == 0, second.stderr
    third = run(*base, "--strategy", "rebase", "--set", "temperature=0.5", *flags)
    assert third.returncode == 0, third.stderr
    rows = stored(out)
    assert len(rows) == 9
    for r in rows:  # the first rows are exactly as written
        if r["strategy"] == "best_of_n":
            assert r == rows_before[cell_of(r)]
    summary = json.loads((out / "summary.json").read_text())
    labels = Counter(g["strategy"] for g in summary["groups"])
    assert labels == {"best_of_n": 1, "rebase": 2}
    fps = {g["fingerprint"] for g in summary["groups"] if g["strategy"] == "rebase"}
    assert len(fps) == 2
    temps = {summary["settings"][fp]["temperature"] for fp in fps}
    assert temps == {0.8, 0.5}
    assert "temperature=0.5" in third.stdout  # the table names the setting that differs


def test_report_table_markdown_and_plot(replicas: list[Any], tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    out = tmp_path / "r"
    proc = run(
        "eval",
        "--dataset",
        "math500,aime24",
        "--limit",
        "2",
        "--strategy",
        "best_of_n,dora",
        "--budget",
        "2,4",
        "--out",
        str(out),
        "--quiet",
        *replica_flags(replicas),
    )
    assert proc.returncode == 0, proc.stderr
    png = tmp_path / "fig.png"
    rep = run("report", str(out), "--plot", str(png), "--markdown")
    assert rep.returncode == 0, rep.stderr
    assert png.stat().st_size > 10_000 and png.read_bytes()[:4] == b"\x89PNG"
    lines = rep.stdout.splitlines()
    assert lines[0].startswith("| dataset") and len(lines) == 2 + 2 * 2 * 2
    bad = run("report", str(tmp_path / "nothing"))
    assert bad.returncode == 2 and "no results.sqlite" in bad.stderr


@pytest.mark.slow
async def test_ray_executor_gives_the_same_rows_as_local(
    replicas: list[Any], tmp_path: Path
) -> None:
    ray = pytest.importorskip("ray")
    from langgraph_tts.context import SolveContext
    from langgraph_tts.replicas import replica_urls
    from langgraph_tts.sweep import SweepSpec, run_sweep

    ctx = SolveContext(
        base_url=replicas[0].base_url,
        model="sim-policy",
        prm_url=replicas[0].url,
        prm_model="sim-prm",
        embed_url=replicas[0].base_url,
        embed_model="sim-embed",
    )

    def spec() -> SweepSpec:
        return SweepSpec(["math500"], ["best_of_n", "dora"], [4], [0, 1], ctx, limit=3)

    def reps() -> list[Any]:
        return replica_urls(
            [s.base_url for s in replicas],
            [s.url for s in replicas],
            [s.base_url for s in replicas],
        )

    await run_sweep(spec(), tmp_path / "local", reps(), concurrency=4)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        await run_sweep(
            spec(), tmp_path / "ray", reps(), concurrency=4, executor="ray", ray_shard_size=3
        )
    finally:
        ray.shutdown()

    def essence(rows: list[dict[str, Any]]) -> dict[tuple[Any, ...], Any]:
        return {cell_of(r): (r["prediction"], r["correct"], r["ledger"]["samples"]) for r in rows}

    local, remote = stored(tmp_path / "local"), stored(tmp_path / "ray")
    assert len(remote) == 12 and essence(remote) == essence(local)


def test_a_dead_replica_is_left_out(replicas: list[Any], tmp_path: Path) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}"
    out = tmp_path / "d"
    flags = [*MODELS, "--base-url", f"{dead}/v1", "--prm-url", dead]
    flags += ["--base-url", replicas[0].base_url, "--prm-url", replicas[0].url]
    base = ["eval", "--dataset", "math500", "--limit", "4", "--strategy", "best_of_n"]
    proc = run(*base, "--budget", "2", "--out", str(out), "--quiet", *flags)
    assert proc.returncode == 0, proc.stderr
    assert "replica 0 is down" in proc.stderr
    rows = stored(out)
    assert len(rows) == 4 and all(r["replica"] == 1 and not r["error"] for r in rows)


async def test_a_replica_dying_mid_sweep_hands_its_problems_over(
    replicas: list[Any], tmp_path: Path
) -> None:
    from langgraph_tts.context import SolveContext
    from langgraph_tts.replicas import replica_urls
    from langgraph_tts.sim.server import SimConfig, start_server
    from langgraph_tts.sweep import SweepSpec, run_sweep

    doomed = start_server(SimConfig(seed=0, latency_ms=15))
    live = replicas[0]
    ctx = SolveContext(model="sim-policy", prm_model="sim-prm", embed_model="sim-embed")
    spec = SweepSpec(["math500"], ["rebase"], [4], [0], ctx, limit=12)
    reps = replica_urls([doomed.base_url, live.base_url], [doomed.url, live.url], [])
    seen: list[dict[str, Any]] = []

    stopped_at: list[int] = []

    def on_row(row: dict[str, Any]) -> None:
        seen.append(row)
        if not stopped_at and len(seen) >= 3 and any(r["replica"] == 0 for r in seen):
            doomed.stop()  # mid-sweep: its problems in flight fail and move on
            stopped_at.append(len(seen))

    try:
        await run_sweep(spec, tmp_path / "f", reps, concurrency=4, on_row=on_row)
    finally:
        doomed.stop()
    rows = stored(tmp_path / "f")
    assert len(rows) == 12 and not any(r["error"] for r in rows)
    assert stopped_at and stopped_at[0] < 8
    # after the stop (and the problems that were just finishing), only the live replica
    assert all(r["replica"] == 1 for r in seen[stopped_at[0] + 4 :])
