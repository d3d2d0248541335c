"""Shared fixtures: one simulator (a real HTTP server on 127.0.0.1) per test session."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

os.environ.setdefault("LANGSMITH_TRACING", "false")


@pytest.fixture(scope="session")
def sim() -> Iterator[Any]:
    """The built-in simulator on a free loopback port."""
    from langgraph_tts.sim.server import SimConfig, start_server

    with start_server(SimConfig(seed=0)) as server:
        yield server


@pytest.fixture
def sim_stats(sim: Any) -> Any:
    """Reset the simulator's counters before a test that compares against them."""
    sim.reset_stats()
    return sim


def sim_settings(server: Any, **overrides: Any) -> dict[str, Any]:
    """Context settings pointing every endpoint at `server`."""
    return {
        "base_url": server.base_url,
        "model": "sim-policy",
        "prm_url": server.url,
        "prm_model": "sim-prm",
        "embed_url": server.base_url,
        "embed_model": "sim-embed",
        **overrides,
    }
