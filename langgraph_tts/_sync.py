"""Sync twins of async nodes: each runs its coroutine on one background event loop.

LangGraph runs a node's sync function under `invoke`/`stream` and its async one under
`ainvoke`/`astream` (as langgraph's prebuilt nodes pair them). The sync twin hands the
coroutine to a long-lived loop in a daemon thread, so HTTP connection pools (which belong to
one loop) are reused across sync runs, and context variables (callbacks, tracing) go along.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import threading
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

from langgraph._internal._runnable import RunnableCallable

__all__ = ["node", "run_sync"]

T = TypeVar("T")

_lock = threading.Lock()
_state: dict[str, asyncio.AbstractEventLoop] = {}


def _loop() -> asyncio.AbstractEventLoop:
    with _lock:
        loop = _state.get("loop")
        if loop is None or loop.is_closed():
            loop = asyncio.new_event_loop()
            thread = threading.Thread(
                target=loop.run_forever, name="langgraph-tts-sync", daemon=True
            )
            thread.start()
            _state["loop"] = loop
        return loop


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run `coro` to completion on the background loop and return its result."""
    loop = _loop()
    context = contextvars.copy_context()
    done: concurrent.futures.Future[T] = concurrent.futures.Future()

    def start() -> None:
        task = loop.create_task(coro, context=context)

        def finish(t: asyncio.Task[T]) -> None:
            if t.cancelled():
                done.cancel()
            elif (err := t.exception()) is not None:
                done.set_exception(err)
            else:
                done.set_result(t.result())

        task.add_done_callback(finish)

    loop.call_soon_threadsafe(start)
    return done.result()


def node(afunc: Callable[..., Awaitable[Any]], name: str | None = None) -> RunnableCallable:
    """A graph node from an async `(state, runtime)` function, with its sync twin."""

    def func(state: Any, runtime: Any) -> Any:
        return run_sync(afunc(state, runtime))  # type: ignore[arg-type]

    label: str = name or getattr(afunc, "__name__", None) or "node"
    func.__name__ = label
    return RunnableCallable(func, afunc, name=label, trace=False)
