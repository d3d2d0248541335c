"""Sync twins of async nodes: each runs its coroutine on its calling thread's own event loop.

LangGraph runs a node's sync function under `invoke`/`stream` and its async one under
`ainvoke`/`astream` (as langgraph's prebuilt nodes pair them). The sync twin runs the
coroutine on a long-lived event loop that belongs to the calling thread, so HTTP connection
pools (which belong to one loop) are reused across sync runs on that thread, no thread waits
on another's loop (a sync call nested in a node cannot deadlock), and context variables
(callbacks, tracing) go along.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import contextvars
import threading
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

from langgraph._internal._runnable import RunnableCallable

__all__ = ["node", "run_sync"]

T = TypeVar("T")

_local = threading.local()
_loops: list[asyncio.AbstractEventLoop] = []
_lock = threading.Lock()


def _thread_loop() -> asyncio.AbstractEventLoop:
    loop: asyncio.AbstractEventLoop | None = getattr(_local, "loop", None)
    if loop is None or loop.is_closed():
        loop = asyncio.new_event_loop()
        _local.loop = loop
        with _lock:
            _loops.append(loop)
    return loop


@atexit.register
def _close_loops() -> None:
    """Close the threads' loops at exit; the clients close their pools as a loop shuts down."""
    with _lock:
        loops, _loops[:] = list(_loops), []
    for loop in loops:
        if loop.is_closed() or loop.is_running():
            continue
        try:
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            loop.close()


def _in_running_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run `coro` to completion from synchronous code and return its result.

    Called where a loop is already running on this thread (sync code inside a coroutine), it
    runs the coroutine on a fresh loop in a helper thread instead.
    """
    if _in_running_loop():
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            return pool.submit(asyncio.run, coro).result()
    loop = _thread_loop()
    task = loop.create_task(coro, context=contextvars.copy_context())
    return loop.run_until_complete(task)


def node(afunc: Callable[..., Awaitable[Any]], name: str | None = None) -> RunnableCallable:
    """A graph node from an async `(state, runtime)` function, with its sync twin."""

    def func(state: Any, runtime: Any) -> Any:
        return run_sync(afunc(state, runtime))  # type: ignore[arg-type]

    label: str = name or getattr(afunc, "__name__", None) or "node"
    func.__name__ = label
    return RunnableCallable(func, afunc, name=label, trace=False)
