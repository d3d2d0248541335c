"""Graphs for `langgraph dev` / LangGraph Studio and LangGraph Server (see langgraph.json).

Imports are absolute: langgraph dev loads this file by path, not as part of the package.

Each graph is exported through a factory that the server calls with the run's context before
the run starts, so a context key no graph setting has (a typo such as `budgett`) fails the
run with one message naming the closest setting, instead of being filtered out. Endpoints
come from the run's context or, when it sets none, from the environment (`.env`):
LANGGRAPH_TTS_BASE_URL, LANGGRAPH_TTS_PRM_URL, LANGGRAPH_TTS_EMBED_URL, ...
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from langgraph.graph.state import CompiledStateGraph
from langgraph_sdk.runtime import ServerRuntime

from langgraph_tts.compute_optimal.graph import create_compute_optimal_graph
from langgraph_tts.scale.graph import create_scale_graph
from langgraph_tts.search.graph import create_search_graph
from langgraph_tts.solve import create_solve_graph

__all__ = ["compute_optimal", "scale", "search", "solve_math"]

_GRAPHS: dict[str, CompiledStateGraph[Any, Any, Any, Any]] = {}


def _graph(name: str) -> CompiledStateGraph[Any, Any, Any, Any]:
    if name not in _GRAPHS:
        build = {
            "solve_math": lambda: create_solve_graph("dora", name="solve_math"),
            "search": lambda: create_search_graph("dora", name="search"),
            "scale": lambda: create_scale_graph(name="scale"),
            "compute_optimal": lambda: create_compute_optimal_graph(name="compute_optimal"),
        }[name]
        _GRAPHS[name] = build()
    return _GRAPHS[name]


def _checked(name: str, runtime: ServerRuntime) -> CompiledStateGraph[Any, Any, Any, Any]:
    graph = _graph(name)
    context = getattr(runtime, "context", None)
    if isinstance(context, Mapping):
        schema = graph.context_schema
        assert schema is not None
        schema(**context)  # unknown keys and bad values: one ConfigError naming the field
    return graph


def solve_math(runtime: ServerRuntime) -> CompiledStateGraph[Any, Any, Any, Any]:
    """Every strategy behind one graph: pick it with the context's `strategy`."""
    return _checked("solve_math", runtime)


def search(runtime: ServerRuntime) -> CompiledStateGraph[Any, Any, Any, Any]:
    """The search graph (best-of-N, beam, DVTS, REBASE, DORA, ...); its state is the tree."""
    return _checked("search", runtime)


def scale(runtime: ServerRuntime) -> CompiledStateGraph[Any, Any, Any, Any]:
    """SCALE: decompose, assess difficulty, route to System-1/System-2, solve in sequence."""
    return _checked("scale", runtime)


def compute_optimal(runtime: ServerRuntime) -> CompiledStateGraph[Any, Any, Any, Any]:
    """Compute-optimal selection: needs a strategy table in the run's context (`table`)."""
    return _checked("compute_optimal", runtime)
