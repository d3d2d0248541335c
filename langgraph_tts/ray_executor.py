"""`--executor ray`: shards of a sweep's grid as Ray tasks (extra `ray`).

Each task is one worker process running the ordinary async evaluation (`sweep.run_cells`)
over its shard, against the same replicas; it returns its rows, and the driver commits each
shard's rows to the results store as the shard finishes (the store's primary key makes that
idempotent, so a shard that Ray retries, or a rerun after a crash, never adds a second row).
The driver connects to the cluster named by `RAY_ADDRESS` (as `ray job submit` sets it), or
starts a local Ray instance.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Sequence
from typing import Any

from .errors import ConfigError, ServerUnavailableError
from .replicas import Replica
from .store import CellKey

__all__ = ["run_on_ray"]

logger = logging.getLogger(__name__)

Triple = tuple[tuple[Any, ...], dict[str, Any], str]


def _run_shard(
    settings: Any,
    urls: list[tuple[str, str | None, str | None]],
    cells: list[tuple[tuple[Any, ...], dict[str, str]]],
    concurrency: int,
) -> list[Triple]:
    """Body of one Ray task: solve a shard in this worker's own event loop."""
    os.environ.setdefault("LANGSMITH_TRACING", "false")
    from .sweep import Cell, run_cells

    replicas = [Replica(i, b, p, e) for i, (b, p, e) in enumerate(urls)]
    rows: list[Triple] = []

    def keep(key: CellKey, row: dict[str, Any], digest: str) -> None:
        rows.append((tuple(key), row, digest))

    todo = [Cell(CellKey(*key), problem) for key, problem in cells]
    asyncio.run(run_cells(todo, settings, replicas, concurrency=concurrency, on_row=keep))
    return rows


def _ray() -> Any:
    try:
        import ray
    except ImportError as err:
        msg = "--executor ray needs Ray: pip install 'langgraph-tts[ray]'"
        raise ConfigError(msg) from err
    return ray


def _init(ray: Any, num_cpus: int | None) -> None:
    if ray.is_initialized():
        return
    address = os.environ.get("RAY_ADDRESS")
    if address:
        ray.init(address=address, log_to_driver=False)
    else:
        ray.init(num_cpus=num_cpus, include_dashboard=False, log_to_driver=False)


async def run_on_ray(
    cells: Sequence[Any],
    settings: Any,
    replicas: Sequence[Replica],
    *,
    concurrency: int,
    shard_size: int,
    on_row: Any,
    num_cpus: int | None = None,
) -> None:
    """Run `cells` as Ray tasks of `shard_size` cells, `concurrency` problems in flight in
    each; `on_row(key, row, digest)` is called in the driver for every row."""
    ray = _ray()
    if shard_size < 1:
        raise ConfigError(f"--ray-shard-size must be at least 1, got {shard_size}")
    _init(ray, num_cpus)
    task = ray.remote(num_cpus=1, max_retries=2)(_run_shard)
    urls = [(r.base_url, r.prm_url, r.embed_url) for r in replicas]
    ctx_ref = ray.put(settings)
    futures = []
    for start in range(0, len(cells), shard_size):
        shard = [(tuple(c.key), c.problem) for c in cells[start : start + shard_size]]
        ref = task.remote(ctx_ref, urls, shard, min(concurrency, len(shard)))
        futures.append(asyncio.wrap_future(ref.future()))
    try:
        for next_done in asyncio.as_completed(futures):
            try:
                rows = await next_done
            except Exception as err:
                cause = getattr(err, "cause", None)
                if isinstance(cause, ServerUnavailableError):
                    raise cause from None
                raise
            for key, row, digest in rows:
                on_row(CellKey(*key), row, digest)
    finally:
        for f in futures:
            f.cancel()
