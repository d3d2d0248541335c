"""Step-level and whole-solution search: nodes and the prebuilt graph."""

from .graph import build_search_graph, create_search_graph
from .nodes import SearchNodes

__all__ = ["SearchNodes", "build_search_graph", "create_search_graph"]
