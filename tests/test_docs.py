"""The docs' code runs: snippets are executed against the in-process simulator."""

from __future__ import annotations

import doctest
import importlib
import re
import sys
import types
from pathlib import Path
from typing import Any

import pytest

from langgraph_tts import create_search_graph
from langgraph_tts.context import search_context_model
from langgraph_tts.sim.inprocess import SimEmbedder, SimPolicy, SimPRM
from langgraph_tts.sim.server import SimConfig
from langgraph_tts.sim.world import make_problems
from langgraph_tts.strategies import Frontier, get_strategy, unregister

DOCS = Path(__file__).resolve().parents[1] / "docs"


def blocks(page: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", (DOCS / page).read_text(encoding="utf-8"), re.S)


def test_the_toy_strategy_in_the_composition_guide_runs() -> None:
    code = next(b for b in blocks("composition.md") if "class Greedy" in b)
    module = types.ModuleType("docs_composition")  # pydantic resolves annotations in it
    sys.modules[module.__name__] = module
    exec(code, module.__dict__)  # registers "greedy"
    try:
        config = SimConfig(seed=2)
        graph = create_search_graph(
            "greedy",
            policy=SimPolicy(config),
            prm=SimPRM(config),
            embedder=SimEmbedder(config),
            budget=4,
            greedy_keep=2,
        )
        out = graph.invoke({"problem": make_problems(1, seed=2)[0].text}, context={"seed": 0})
        assert out["result"]["strategy"] == "greedy" and out["answer"] is not None
        # a frontier with fewer candidates than greedy_keep (an unseeded CI run met one)
        ctx = search_context_model()(strategy="greedy", budget=4, greedy_keep=3)
        one = Frontier(ids=[13], scores=[0.8], groups=[1], embeddings={})
        assert get_strategy("greedy").allocate(ctx, one).counts == [4]
    finally:
        unregister("greedy")
        del sys.modules[module.__name__]


def test_the_search_tree_guide_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = SimConfig(seed=3)
    graph = create_search_graph(
        "dvts", policy=SimPolicy(config), prm=SimPRM(config), embedder=SimEmbedder(config), budget=8
    )
    namespace: dict[str, Any] = {"graph": graph, "problem": make_problems(1, seed=3)[0].text}
    rollouts, plot = blocks("search_tree.md")
    exec(rollouts, namespace)
    assert sum(namespace["by_subtree"].values()) > 0
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    monkeypatch.chdir(tmp_path)
    exec(plot, namespace)
    assert (tmp_path / "tree.png").stat().st_size > 1000


def test_every_docs_page_is_in_the_site_nav() -> None:
    nav = (DOCS.parent / "mkdocs.yml").read_text(encoding="utf-8")
    for page in DOCS.glob("*.md"):
        assert f" {page.name}" in nav, f"{page.name} is not in mkdocs.yml's nav"


# names documented as a group rather than each with its own `:::` entry
GROUPED = {
    "register_strategy": "strategies.register",
    "TTSError": "langgraph_tts.errors",
    "ConfigError": "langgraph_tts.errors",
    "ServerError": "langgraph_tts.errors",
    "ServerUnavailableError": "langgraph_tts.errors",
}


def test_every_public_name_is_in_the_api_reference() -> None:
    import langgraph_tts

    api = (DOCS / "api.md").read_text(encoding="utf-8")
    for name in langgraph_tts.__all__:
        target = GROUPED.get(name, name)
        assert re.search(rf"::: [\w.]*{re.escape(target)}\b", api), f"{name} is not in docs/api.md"
        assert (getattr(langgraph_tts, name).__doc__ or "").strip(), f"{name} has no docstring"


def _doctest_modules() -> list[str]:
    """Modules of the package whose source has a `>>> ` line (a package by its own name)."""
    package = DOCS.parent / "langgraph_tts"
    names = []
    for path in sorted(package.rglob("*.py")):
        if ">>> " in path.read_text(encoding="utf-8"):
            parts = path.relative_to(package.parent).with_suffix("").parts
            names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


def test_docstring_doctests_pass() -> None:
    """Every `>>>` example in the package's docstrings runs and prints what it says."""
    modules = _doctest_modules()
    assert modules, "no doctest found"
    for name in modules:
        result = doctest.testmod(importlib.import_module(name))
        assert result.failed == 0, name


# public names whose examples live elsewhere, with the reason
EXAMPLE_ELSEWHERE: dict[str, str] = {}


def test_every_public_name_has_an_example_the_tests_run() -> None:
    """Each name's own docstring (a class's: the class docstring) has a `>>>` example, and
    `test_docstring_doctests_pass` runs it."""
    import langgraph_tts

    modules = _doctest_modules()
    missing = []
    for name in langgraph_tts.__all__:
        if name in EXAMPLE_ELSEWHERE:
            continue
        obj = getattr(langgraph_tts, name)
        module = importlib.import_module(obj.__module__)
        found = {
            test.name
            for test in doctest.DocTestFinder().find(module)
            if test.examples and test.docstring == obj.__doc__
        }
        if f"{module.__name__}.{obj.__name__}" not in found or module.__name__ not in modules:
            missing.append(name)
    assert not missing, f"no `>>>` example run by the tests: {', '.join(missing)}"


def test_context_schemas_describe_themselves_without_their_examples() -> None:
    """Studio shows the JSON schema's description: the summary, not the doctest."""
    from langgraph_tts.context import (
        ComputeOptimalContext,
        ScaleContext,
        SearchContext,
        SolveContext,
    )

    for model in (SearchContext, ScaleContext, ComputeOptimalContext, SolveContext):
        assert ">>>" in (model.__doc__ or "")
        description = model.model_json_schema()["description"]
        assert description.startswith("Settings of one") and ">>>" not in description


def test_the_studio_guide_quotes_the_repository_and_the_settings() -> None:
    """docs/studio.md's langgraph.json, .env and environment table are the real ones."""
    import json

    from langgraph_tts.settings import ENV_SETTINGS

    page = (DOCS / "studio.md").read_text(encoding="utf-8")
    root = DOCS.parent
    quoted = re.search(r"```json\n(.*?)```", page, re.S)
    assert quoted and json.loads(quoted.group(1)) == json.loads(
        (root / "langgraph.json").read_text(encoding="utf-8")
    )
    env_block = re.search(r"```bash\n(LANGGRAPH_CLI.*?)```", page, re.S)
    dotenv = [
        line
        for line in (root / ".env").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert env_block and env_block.group(1).split() == dotenv
    rows = re.findall(r"^\| `(\w+)` \| `(LANGGRAPH_TTS_\w+)` \| (.*) \|$", page, re.M)
    assert {name: variable for name, variable, _ in rows} == {
        name: variable for name, (variable, _) in ENV_SETTINGS.items()
    }
    for name, _, without in rows:
        fallback = ENV_SETTINGS[name][1]
        assert (f"`{fallback}`" in without) if fallback else not without.startswith("`")
