"""Compiled graphs for `langgraph dev` / LangGraph Studio (see langgraph.json).

Imports are absolute: langgraph dev loads this file by path, not as part of the package.

Endpoints come from each run's context or, when a run sets none, from the environment
(`.env`): LANGGRAPH_TTS_BASE_URL, LANGGRAPH_TTS_PRM_URL, LANGGRAPH_TTS_EMBED_URL, ...
A run's context changes only the fields it sets; an unknown or invalid one fails the run with
one message naming the field.
"""

from __future__ import annotations

from langgraph_tts.compute_optimal.graph import create_compute_optimal_graph
from langgraph_tts.scale.graph import create_scale_graph
from langgraph_tts.search.graph import create_search_graph
from langgraph_tts.solve import create_solve_graph

__all__ = ["compute_optimal", "scale", "search", "solve_math"]

solve_math = create_solve_graph("dora", name="solve_math")
"""Every strategy behind one graph: pick it with the context's `strategy`."""
search = create_search_graph("dora", name="search")
"""The step-level search graph (state includes the search tree)."""
scale = create_scale_graph(name="scale")
"""SCALE: decompose, assess difficulty, route to System-1/System-2, solve in sequence."""
compute_optimal = create_compute_optimal_graph(name="compute_optimal")
"""Compute-optimal selection: needs a strategy table in the run's context (`table`)."""
