"""Compiled graphs for `langgraph dev` / LangGraph Studio (see langgraph.json).

Imports are absolute: langgraph dev loads this file by path, not as part of the package.

Endpoints come from each run's context or, when a run passes none, from the environment
(`.env`): LANGGRAPH_TTS_BASE_URL, LANGGRAPH_TTS_PRM_URL, LANGGRAPH_TTS_EMBED_URL, ...
"""

from __future__ import annotations

from langgraph_tts.scale.graph import create_scale_graph
from langgraph_tts.search.graph import create_search_graph
from langgraph_tts.solve import create_solve_graph

__all__ = ["scale", "search", "solve_math"]

solve_math = create_solve_graph(name="solve_math")
"""Every strategy behind one graph: pick it with the context's `strategy`."""
search = create_search_graph("dora", name="search")
"""The step-level search graph (state includes the search tree)."""
scale = create_scale_graph(name="scale")
"""SCALE: decompose, assess difficulty, route to System-1/System-2, solve in sequence."""
