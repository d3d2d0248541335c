"""Test doubles shared by the test modules (no network)."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

from langgraph_tts.clients.types import ChatMessage, Generation, Policy, SamplingParams


@dataclass
class Call:
    """One recorded policy request."""

    messages: list[ChatMessage]
    n: int
    params: SamplingParams | None
    continue_final_message: bool


@dataclass
class RecordingPolicy:
    """Wraps a Policy and records every request (to count requests per prefix)."""

    inner: Policy
    calls: list[Call] = field(default_factory=list)

    @property
    def model(self) -> str:
        return self.inner.model

    async def generate(
        self,
        messages: Sequence[ChatMessage],
        *,
        n: int = 1,
        params: SamplingParams | None = None,
        continue_final_message: bool = False,
    ) -> Generation:
        self.calls.append(Call(list(messages), n, params, continue_final_message))
        return await self.inner.generate(
            messages, n=n, params=params, continue_final_message=continue_final_message
        )

    def prefixes(self) -> list[str]:
        return [c.messages[-1]["content"] if c.continue_final_message else "" for c in self.calls]


def total_samples(policy: RecordingPolicy) -> int:
    return sum(c.n for c in policy.calls)


def load_benchmark(name: str) -> ModuleType:
    """`benchmarks/<name>.py` as a module, with `benchmarks/` on the path as running it has."""
    path = Path(__file__).resolve().parents[1] / "benchmarks" / f"{name}.py"
    if str(path.parent) not in sys.path:
        sys.path.insert(0, str(path.parent))
    spec = importlib.util.spec_from_file_location(f"{name}_benchmark", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module
