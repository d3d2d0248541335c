"""The examples run as written against the simulator (no GPU, no network) and print the truth
of the problem they solved (the simulator's world and the problems share a seed)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = sorted((Path(__file__).resolve().parents[1] / "examples").glob("*.py"))
ANSWER = re.compile(r"answer:\s+(\S+) \(truth (\S+?)\)")


@pytest.mark.e2e
@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_example_runs_and_answers_its_problem(path: Path) -> None:
    proc = subprocess.run([sys.executable, str(path)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    pairs = ANSWER.findall(proc.stdout)
    assert pairs, f"{path.name} prints no 'answer: X (truth Y)' line:\n{proc.stdout}"
    for answer, truth in pairs:
        assert answer == truth, f"{path.name}: {answer} != {truth}\n{proc.stdout}"


def test_every_composition_example_is_present() -> None:
    names = {p.stem for p in EXAMPLES}
    assert {
        "router_agent",
        "chat_agent",
        "scale_with_dora",
        "streaming",
        "human_in_the_loop",
    } <= names
