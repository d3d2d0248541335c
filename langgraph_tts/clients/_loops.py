"""Values that live one per running event loop, and running a coroutine from sync code.

Why: connection pools and semaphores are bound to the loop they were first used in, while a
client object outlives loops (one `asyncio.run` per CLI call, the sync wrappers, `langgraph
dev`'s loop).
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from collections.abc import AsyncGenerator, Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

__all__ = ["LoopLocal", "run_sync"]

T = TypeVar("T")
V = TypeVar("V")


@dataclass(slots=True, eq=False)
class _Entry(Generic[V]):
    """One loop's value, a weak reference to that loop, and the generator that closes it."""

    loop_ref: Callable[[], asyncio.AbstractEventLoop | None]
    value: V
    closer: AsyncGenerator[None, None] | None = None


def _loop_ref(loop: asyncio.AbstractEventLoop) -> Callable[[], asyncio.AbstractEventLoop | None]:
    """A weak reference to `loop` (a strong one for loop types that refuse weak references)."""
    try:
        return weakref.ref(loop)
    except TypeError:
        return lambda: loop


class LoopLocal(Generic[V]):
    """One value per running event loop (a connection pool, a semaphore), made on first use.

    Why: connection pools and semaphores are bound to the loop they were first used in, while
    a client object outlives loops (one `asyncio.run` per CLI call, the sync wrappers,
    `langgraph dev`'s loop). Values are keyed by a weak reference to their loop.

    Each value is closed inside its own loop: a suspended async generator is started in the
    loop, and loops finalise live async generators when they shut down (`asyncio.run` awaits
    `loop.shutdown_asyncgens()`), so its `finally` runs `close(value)` before the loop closes
    instead of leaking sockets. `aclose()` does the same on demand.

    Args:
        factory: Makes the value; called inside the running loop.
        close: Releases a value; awaited in the value's loop.
    """

    def __init__(
        self, factory: Callable[[], V], close: Callable[[V], Awaitable[None]] | None = None
    ) -> None:
        self._factory = factory
        self._close = close
        self._entries: dict[int, _Entry[V]] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    async def get(self) -> V:
        """The running loop's value."""
        loop = asyncio.get_running_loop()
        with self._lock:
            entry = self._entries.get(id(loop))
            if entry is not None and entry.loop_ref() is loop:
                return entry.value
            self._prune_locked()
            entry = _Entry(loop_ref=_loop_ref(loop), value=self._factory())
            self._entries[id(loop)] = entry
        # Starting the generator registers it for the loop's shutdown; it does not suspend.
        entry.closer = self._close_at_shutdown(entry)
        await entry.closer.__anext__()
        return entry.value

    async def aclose(self) -> None:
        """Close the running loop's value now (a new one is made if it is used again)."""
        loop = asyncio.get_running_loop()
        with self._lock:
            entry = self._entries.get(id(loop))
            if entry is None or entry.loop_ref() is not loop:
                return
        if entry.closer is not None:
            await entry.closer.aclose()  # its `finally` forgets the entry and closes the value
        else:
            self._forget(entry)
            if self._close is not None:
                await self._close(entry.value)

    async def _close_at_shutdown(self, entry: _Entry[V]) -> AsyncGenerator[None, None]:
        """Parks until the loop shuts down (or `aclose`), then closes `entry`'s value."""
        try:
            yield
        finally:
            self._forget(entry)
            if self._close is not None:
                await self._close(entry.value)

    def _forget(self, entry: _Entry[V]) -> None:
        with self._lock:
            for key, known in list(self._entries.items()):
                if known is entry:
                    del self._entries[key]

    def _prune_locked(self) -> None:
        """Forget values whose loop is gone or closed; they can no longer be awaited."""
        for key, entry in list(self._entries.items()):
            loop = entry.loop_ref()
            if loop is None or loop.is_closed():
                del self._entries[key]


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run `coro` to completion from synchronous code, in a fresh event loop.

    The sync wrappers use this; it refuses to run inside a running event loop (where blocking
    would deadlock it) and tells the caller to await the async method instead. Pools opened
    in the fresh loop are closed when `asyncio.run` shuts it down.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    coro.close()
    raise RuntimeError(
        "a *_sync method was called from inside a running event loop; "
        "await the async method (generate/score/embed) instead"
    )
