"""`langgraph-tts calibrate` and `--strategy compute_optimal` over real HTTP (the simulator)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from test_cli import model_flags, run_cli

from langgraph_tts.cli import main
from langgraph_tts.compute_optimal import Cell, Choice, StrategyTable, load_table, write_table
from langgraph_tts.sim.world import make_problems

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def fitted(sim: Any, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A table fitted by the command line on 12 simulated problems, and what it printed."""
    out = tmp_path_factory.mktemp("calibrate") / "table.json"
    proc = run_cli(
        "calibrate",
        "--dataset",
        "sim:default",
        "--limit",
        "12",
        "--budgets",
        "2,4",
        "--strategies",
        "best_of_n,beam",
        "--bins",
        "3",
        "--targets",
        "8,16",
        "--seed",
        "0",
        "--out",
        str(out),
        *model_flags(sim),
    )
    assert proc.returncode == 0, proc.stderr
    return out, proc.stdout


def test_calibrate_writes_a_valid_table_and_its_runs(fitted: tuple[Path, str]) -> None:
    path, printed = fitted
    table = load_table(path)
    assert table.budgets == [2, 4] and table.bins == 3 and table.difficulty == "predicted"
    assert table.source["dataset"] == "sim:default" and table.source["problems"] == 12
    assert all(sum(table.cell(b, n).problems for b in (1, 2, 3)) == 12 for n in (2, 4))
    runs = path.with_name("table-runs")
    names = {"difficulty", "best_of_n-n2", "beam-m1-n2", "beam-m4-n2"}
    names |= {"best_of_n-n4", "beam-m2-n4", "beam-m4-n4"}
    assert {p.name for p in runs.iterdir()} == names
    difficulty_rows = (runs / "difficulty" / "results.jsonl").read_text().splitlines()
    assert all(json.loads(r)["ledger"]["samples"] == 8 for r in difficulty_rows)
    assert "| bin | difficulty score | N=2: θ (CV acc.) | N=4: θ (CV acc.) |" in printed
    assert f"-> {path}" in printed
    # per-bin budgets: N=8 affords only the k = 8 estimation samples, N=16 a search on top
    assert [p.target for p in table.plans] == [8, 16]
    assert {e.name for e in table.plans[0].entries} == {"best_of_n@8"}
    assert "per-bin budgets (samples per problem, k included):" in printed
    assert "| bin | N=8 | N=16 |" in printed


def test_solve_books_the_estimation_samples_as_the_server_counted(
    sim: Any, fitted: tuple[Path, str]
) -> None:
    path, _ = fitted
    sim.reset_stats()
    problem = make_problems(3, seed=0)[2].text
    proc = run_cli(
        "solve",
        problem,
        "--strategy",
        "compute_optimal",
        "--table",
        str(path),
        "--budget",
        "4",
        "--json",
        *model_flags(sim),
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    stats = sim.stats()
    result, ledger = out["result"], out["ledger"]
    assert out["answer"] is not None and result["strategy"] == "compute_optimal"
    assert 1 <= result["bin"] <= 3 and 0.0 <= result["difficulty"] <= 1.0
    assert result["chosen"] == load_table(path).select(result["difficulty"], 4).cell.choice.name
    # the k estimation samples are charged; best-of-N at 4 <= k reuses them and draws nothing
    least = 8 if result["chosen_strategy"] == "best_of_n" else 8 + 4
    assert ledger["samples"] == stats["samples"] >= least
    assert result["reused"] == (4 if result["chosen_strategy"] == "best_of_n" else 0)
    assert ledger["completion_tokens"] == stats["completion_tokens"]
    assert ledger["prompt_tokens"] == stats["prompt_tokens"]
    assert ledger["prm_tokens"] == stats["prm_tokens"]


def test_eval_routes_easy_and_hard_problems_to_different_strategies(
    sim: Any, fitted: tuple[Path, str], tmp_path: Path
) -> None:
    # the calibration's estimates of the same 12 problems (same seed, so the same samples)
    rows = (fitted[0].with_name("table-runs") / "difficulty" / "results.jsonl").read_text()
    calibrated = {r["id"]: r["result"]["difficulty"] for r in map(json.loads, rows.splitlines())}
    cut = (min(calibrated.values()) + max(calibrated.values())) / 2
    # a hand-made table: problems scoring >= cut are easy (best-of-N), the rest beam search
    picks = {1: Choice(strategy="best_of_n"), 2: Choice(strategy="beam", beam_width="sqrt")}
    cells = [
        Cell(bin=b, budget=4, choice=c, problems=1, accuracy=1, cv_accuracy=1)
        for b, c in picks.items()
    ]
    table = write_table(
        StrategyTable(difficulty_samples=8, thresholds=[cut], cells=cells), tmp_path / "t.json"
    )
    out_dir = tmp_path / "run"
    proc = run_cli(
        "eval",
        "--dataset",
        "sim:default",
        "--limit",
        "12",
        "--strategy",
        "compute_optimal",
        "--table",
        str(table),
        "--budget",
        "4",
        "--seed",
        "0",
        "--out",
        str(out_dir),
        "--quiet",
        *model_flags(sim),
    )
    assert proc.returncode == 0, proc.stderr
    rows = [json.loads(line) for line in (out_dir / "results.jsonl").read_text().splitlines()]
    assert len(rows) == 12 and not any(r["error"] for r in rows)
    routed = {(r["result"]["bin"], r["result"]["chosen"]) for r in rows}
    assert routed == {(1, "best_of_n"), (2, "beam(M=sqrt)")}
    for r in rows:
        assert r["result"]["difficulty"] == pytest.approx(calibrated[r["id"]], abs=1e-6)
        assert (r["result"]["difficulty"] >= cut) == (r["result"]["bin"] == 1)
        if r["result"]["bin"] == 1:  # best-of-N at 4 is the k = 8 estimation samples' vote
            assert r["ledger"]["samples"] == 8 and r["result"]["voters"] == 8
        else:  # the k estimation samples are charged on top of the search
            assert r["ledger"]["samples"] >= 8 + 4


@pytest.mark.parametrize(
    ("table_text", "message"),
    [
        (None, "not found"),
        ('{"difficulty_samples": 8,', "not valid JSON"),
        (
            '{"difficulty_samples": 8, "thresholds": [], "cells": [{"bin": 1, "budget": 4, '
            '"choice": {"strategy": "lookahead"}, "problems": 1, "accuracy": 1, '
            '"cv_accuracy": 1}]}',
            "cells.0.choice.strategy",
        ),
    ],
)
def test_a_bad_table_is_one_clear_line(
    sim: Any,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    table_text: str | None,
    message: str,
) -> None:
    path = tmp_path / "table.json"
    if table_text is not None:
        path.write_text(table_text)
    sim.reset_stats()
    for command in (
        ["solve", "1+1?"],
        ["eval", "--dataset", "sim:default", "--out", str(tmp_path)],
    ):
        code = main(
            [*command, "--strategy", "compute_optimal", "--table", str(path), *model_flags(sim)]
        )
        err = capsys.readouterr().err
        assert code == 2 and "Traceback" not in err
        lines = [line for line in err.splitlines() if line.strip()]
        assert len(lines) == 1 and message in lines[0], err
    assert sim.stats()["samples"] == 0
