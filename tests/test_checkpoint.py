"""A run interrupted before the vote in one process resumes in another (SQLite checkpointer)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytest.importorskip("langgraph.checkpoint.sqlite")

SCRIPT = textwrap.dedent(
    """
    import json, sqlite3, sys
    from langgraph.checkpoint.sqlite import SqliteSaver
    from langgraph_tts import create_search_graph
    from langgraph_tts.sim.inprocess import SimEmbedder, SimPolicy, SimPRM
    from langgraph_tts.sim.server import SimConfig
    from langgraph_tts.sim.world import make_problems

    config = SimConfig(seed=4)
    saver = SqliteSaver(sqlite3.connect(sys.argv[1], check_same_thread=False))
    graph = create_search_graph(
        "dora", policy=SimPolicy(config), prm=SimPRM(config), embedder=SimEmbedder(config),
        budget=4, seed=2, checkpointer=saver, interrupt_before=["vote"],
    )
    thread = {"configurable": {"thread_id": "math-1"}}
    if sys.argv[2] == "start":
        graph.invoke({"problem": make_problems(1, seed=4)[0].text}, thread)
    else:
        graph.invoke(None, thread)
    state = graph.get_state(thread)
    answers = [state.values["nodes"][i]["answer"] for i in state.values.get("completed", [])]
    print(json.dumps({"next": list(state.next), "answer": state.values.get("answer"),
                      "candidates": answers, "samples": state.values["ledger"]["samples"]}))
    """
)


def _run(tmp_path: Path, db: Path, step: str) -> dict[str, object]:
    script = tmp_path / "run.py"
    script.write_text(SCRIPT)
    proc = subprocess.run(
        [sys.executable, str(script), str(db), step], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    out: dict[str, object] = json.loads(proc.stdout.strip().splitlines()[-1])
    return out


def test_interrupt_in_one_process_and_resume_in_another(tmp_path: Path) -> None:
    db = tmp_path / "checkpoints.sqlite"
    first = _run(tmp_path, db, "start")
    assert first["next"] == ["vote"] and first["answer"] is None
    assert len(first["candidates"]) >= 4  # type: ignore[arg-type]
    second = _run(tmp_path, db, "resume")
    assert second["next"] == [] and second["answer"] in first["candidates"]  # type: ignore[operator]
    assert second["samples"] == first["samples"], "resuming draws no new samples"
