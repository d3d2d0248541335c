"""The `langgraph-tts` command: solve, eval, bad input, dead servers (real processes, real HTTP)."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from langgraph_tts.cli import main

pytestmark = pytest.mark.e2e


def run_cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "langgraph_tts.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={"PATH": "/usr/bin:/bin", "LANGSMITH_TRACING": "false", "HOME": str(Path.home())},
    )


def model_flags(sim: Any) -> list[str]:
    return [
        "--base-url",
        sim.base_url,
        "--model",
        "sim-policy",
        "--prm-url",
        sim.url,
        "--prm-model",
        "sim-prm",
        "--embed-url",
        sim.base_url,
        "--embed-model",
        "sim-embed",
    ]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_solve_json_best_of_n_ledger_matches_server(sim: Any) -> None:
    sim.reset_stats()
    problem = "What is the sum of the first 10 positive odd numbers?"
    proc = run_cli(
        "solve", problem, "--strategy", "best_of_n", "--budget", "8", "--json", *model_flags(sim)
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["answer"] is not None
    assert out["strategy"] == "best_of_n" and out["budget"] == 8
    stats = sim.stats()
    assert out["ledger"]["samples"] == stats["samples"] == 8
    assert out["ledger"]["completion_tokens"] == stats["completion_tokens"]
    assert out["verifier"] == "prm"


def test_eval_writes_results_and_summary_and_resumes(sim: Any, tmp_path: Path) -> None:
    out_dir = tmp_path / "run"
    args = [
        "eval",
        "--dataset",
        "math500",
        "--limit",
        "5",
        "--strategy",
        "rebase",
        "--budget",
        "4",
        "--out",
        str(out_dir),
        "--quiet",
        *model_flags(sim),
    ]
    proc = run_cli(*args)
    assert proc.returncode == 0, proc.stderr
    rows = [json.loads(line) for line in (out_dir / "results.jsonl").read_text().splitlines()]
    assert len(rows) == 5
    assert {"id", "prediction", "answer", "correct", "ledger", "wall_s", "error"} <= set(rows[0])
    (group,) = json.loads((out_dir / "summary.json").read_text())["groups"]
    assert group["n"] == 5 and group["strategy"] == "rebase" and group["budget"] == 4
    assert 0.0 <= group["accuracy"] <= 1.0 and group["mean_samples"] > 0
    assert "rebase" in proc.stdout and "summary.json" in proc.stdout
    # the same command again resumes: no request, the same five rows
    sim.reset_stats()
    proc = run_cli(*args)
    assert proc.returncode == 0, proc.stderr
    assert sim.stats()["samples"] == 0
    (group,) = json.loads((out_dir / "summary.json").read_text())["groups"]
    assert group["n"] == 5


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["solve", "", "--strategy", "dora"], "empty"),
        (["solve", "1+1?", "--budget", "0"], "budget"),
        (["solve", "1+1?", "--strategy", "mcts"], "strategy"),
        (["solve", "1+1?", "--base-url", "not a url"], "base_url"),
        (["solve", "1+1?", "--set", "tau=2"], "tau"),
        (["solve", "1+1?", "--set", "nonsense=1"], "nonsense"),
        (["eval", "--dataset", "nope", "--out", "/tmp/x"], "unknown dataset"),
    ],
)
def test_bad_input_is_one_clear_line(args: list[str], message: str) -> None:
    proc = run_cli(*args)
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert message in lines[0]


def test_dead_server_names_url_and_how_to_start_one() -> None:
    port = free_port()
    proc = run_cli("solve", "1+1?", "--base-url", f"http://127.0.0.1:{port}/v1", "--model", "m")
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert f"http://127.0.0.1:{port}/v1" in lines[0]
    assert "vllm serve" in lines[0] and "sim-server" in lines[0]


def test_wrong_model_name_is_named(sim: Any) -> None:
    proc = run_cli("solve", "1+1?", "--base-url", sim.base_url, "--model", "gpt-7")
    assert proc.returncode != 0
    assert "gpt-7" in proc.stderr and "sim-policy" in proc.stderr


def _mask(text: str) -> str:
    text = re.sub(r"http://127\.0\.0\.1:\d+", "http://127.0.0.1:PORT", text)
    text = re.sub(r"[\d.]+e\+\d+ FLOPs|[\d.]+ s\b", "X", text)
    return "\n".join(line.rstrip() for line in text.strip().splitlines())


def test_demo_prints_what_the_readme_shows() -> None:
    proc = run_cli("demo")
    assert proc.returncode == 0, proc.stderr
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    shown = readme.split("$ make demo\n", 1)[1].split("```", 1)[0]
    assert _mask(proc.stdout) == _mask(shown)


def test_demo_lists_its_choices_and_numbers_problems_as_printed(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit):
        main(["demo", "--help"])
    help_text = capsys.readouterr().out
    for name in ("dora", "rebase", "particle_filtering", "compute_optimal", "scale"):
        assert name in help_text
    assert main(["demo", "--strategy", "compute_optimal", "--problem", "3"]) == 2
    err = capsys.readouterr()
    assert "Simulated problem 3:" in err.out
    assert err.err.strip().endswith("`langgraph-tts calibrate` writes one")
    assert main(["demo", "--problem", "0"]) == 2
    assert "--problem counts from 1" in capsys.readouterr().err


def test_calibrate_bon_pool_below_the_largest_budget_fails_before_any_request(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    args = ["calibrate", "--dataset", "sim:default", "--out", str(tmp_path / "t.json")]
    assert main([*args, "--budgets", "4,16", "--bon-pool", "8"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.endswith("--bon-pool must be at least the largest --budgets (16), got 8")
    assert main([*args, "--strategies", "dvts", "--bon-pool", "64"]) == 2
    assert capsys.readouterr().err.strip().endswith("add best_of_n to --strategies")
    assert not (tmp_path / "t-runs").exists()
