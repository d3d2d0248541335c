"""What every prebuilt graph's `build_*`/`create_*` pair shares: bound settings and compile."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from langgraph.graph import StateGraph
from langgraph.graph.state import CompiledStateGraph

from .errors import ConfigError

__all__ = ["RECURSION_LIMIT", "bind_settings", "compile_graph"]

RECURSION_LIMIT = 10_000
"""Set explicitly: 40 search iterations need ~170 super-steps, more than LangGraph's 25."""


def bind_settings(model: type[Any], strategy: str | None, settings: dict[str, Any]) -> Any:
    """The graph's bound settings: `strategy` and `settings` validated by its context schema."""
    if strategy is not None:
        if "strategy" in settings and settings["strategy"] != strategy:
            msg = f"strategy given twice: {strategy!r} and strategy={settings['strategy']!r}"
            raise ConfigError(msg)
        settings = {**settings, "strategy": strategy}
    return model(**settings)


def compile_graph(
    builder: StateGraph[Any, Any, Any, Any],
    *,
    checkpointer: Any = None,
    store: Any = None,
    interrupt_before: Sequence[str] | str | None = None,
    interrupt_after: Sequence[str] | str | None = None,
    name: str,
    debug: bool = False,
) -> CompiledStateGraph[Any, Any, Any, Any]:
    """Compile with LangGraph's own options; an unknown interrupt node fails, naming the nodes."""
    for which in (interrupt_before, interrupt_after):
        names = [which] if isinstance(which, str) else list(which or [])
        unknown = [n for n in names if n != "*" and n not in builder.nodes]
        if unknown:
            msg = (
                f"cannot interrupt at {unknown[0]!r}: the graph's nodes are "
                f"{', '.join(builder.nodes)}"
            )
            raise ConfigError(msg)
    graph = builder.compile(
        checkpointer=checkpointer,
        store=store,
        interrupt_before=interrupt_before,  # type: ignore[arg-type]
        interrupt_after=interrupt_after,  # type: ignore[arg-type]
        name=name,
        debug=debug,
    )
    return graph.with_config(recursion_limit=RECURSION_LIMIT)
