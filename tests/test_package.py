"""Packaging: lazy imports, public surface, shipped data, generated docs are current."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

import langgraph_tts
from langgraph_tts.errors import ConfigError
from langgraph_tts.evaluation import DATASETS, load_dataset

ROOT = Path(__file__).resolve().parents[1]


def test_import_is_lazy() -> None:
    code = (
        "import sys, langgraph_tts; "
        "print(int('langchain_openai' in sys.modules), int('langgraph.graph' in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["0", "0"]


def test_every_export_resolves() -> None:
    for name in langgraph_tts.__all__:
        assert getattr(langgraph_tts, name) is not None, name
    with pytest.raises(AttributeError):
        langgraph_tts.does_not_exist  # noqa: B018


def test_py_typed_is_shipped() -> None:
    spec = importlib.util.find_spec("langgraph_tts")
    assert spec is not None and spec.origin is not None
    assert (Path(spec.origin).parent / "py.typed").exists()


@pytest.mark.parametrize(
    ("name", "count"),
    [("math500", 500), ("aime24", 30), ("aime25", 30), ("amc23", 40), ("gsm8k", 1319)],
)
def test_builtin_datasets(name: str, count: int) -> None:
    rows = load_dataset(name)
    assert len(rows) == count
    assert all(r["problem"] and r["answer"] and r["id"] for r in rows)
    assert len({r["id"] for r in rows}) == count
    assert name in DATASETS


def test_dataset_from_path_and_errors(tmp_path: Path) -> None:
    good = tmp_path / "d.jsonl"
    good.write_text('{"problem": "1+1?", "answer": "2"}\n\n{"problem": "2+2?", "answer": "4"}\n')
    assert [r["answer"] for r in load_dataset(str(good))] == ["2", "4"]
    assert len(load_dataset(str(good), limit=1)) == 1
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"problem": "x"}\n')
    with pytest.raises(ConfigError, match="answer"):
        load_dataset(str(bad))
    with pytest.raises(ConfigError, match="unknown dataset"):
        load_dataset("no_such_set")


def test_configuration_doc_is_current() -> None:
    spec = importlib.util.spec_from_file_location("gen", ROOT / "scripts" / "gen_config_docs.py")
    assert spec is not None and spec.loader is not None
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    current = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    assert current == gen.render(), "run: python scripts/gen_config_docs.py"


def test_readme_opens_with_the_two_commands() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    first_block = readme.split("```")[1]
    lines = [line.split("#")[0].strip() for line in first_block.splitlines()[1:]]
    commands = [line for line in lines if line]
    assert commands[:2] == ["make demo", "make test"]
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert "make test" in ci


def test_simulated_dataset_matches_the_simulator_world() -> None:
    from langgraph_tts.sim.world import problem_for

    rows = load_dataset("sim:popular_worse:1", limit=5)
    assert len(rows) == 5 and len({r["id"] for r in rows}) == 5
    for r in rows:
        assert problem_for(r["problem"], scenario="popular_worse", seed=1).answer == r["answer"]
    assert len(load_dataset("sim:easy")) == 200
    with pytest.raises(ConfigError, match="scenario"):
        load_dataset("sim:nope")
    with pytest.raises(ConfigError, match="seed"):
        load_dataset("sim:easy:x")
