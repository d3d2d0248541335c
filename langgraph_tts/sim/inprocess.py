"""The simulated world without HTTP: `Policy`, `RewardModel` and `Embedder` implementations.

Each class builds the request body a vLLM client would send and runs it through the same
`SimEngine` handler the HTTP server uses, so results are identical to the server's for the
same configuration and request seed. Latency is simulated with `asyncio.sleep`; fault
injection is an HTTP concern and does not apply here.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from langgraph_tts import prompts
from langgraph_tts.clients._stream import STREAM_OPTIONS, ChoiceStream
from langgraph_tts.clients.policy import build_chat_body, parse_chat_response
from langgraph_tts.clients.types import (
    ChatMessage,
    Embeddings,
    Generation,
    SamplingParams,
    Scores,
    StopTest,
    Usage,
)
from langgraph_tts.errors import ServerError
from langgraph_tts.sim.config import SimConfig
from langgraph_tts.sim.engine import STEP_TAG, SimEngine
from langgraph_tts.sim.protocol import Message, SimRequestError, render_qwen

__all__ = ["SimEmbedder", "SimPRM", "SimPolicy", "sim_clients"]


class _InProcess:
    """Shared plumbing: one engine (own or shared), simulated latency, vLLM errors as
    `ServerError`s."""

    def __init__(
        self, config: SimConfig | None = None, *, engine: SimEngine | None = None, **overrides: Any
    ) -> None:
        if engine is not None:
            if config is not None or overrides:
                raise ValueError("pass either an engine or a config/overrides, not both")
            self.engine = engine
        else:
            base = config.model_dump() if config is not None else {}
            self.engine = SimEngine(SimConfig(**{**base, **overrides}))

    @property
    def config(self) -> SimConfig:
        return self.engine.config

    def stats(self) -> dict[str, Any]:
        """Counters of the engine (same shape as `GET /sim/stats`)."""
        return self.engine.stats.snapshot()

    async def _call(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        if self.config.latency_ms > 0:
            await asyncio.sleep(self.config.latency_ms / 1000.0)
        try:
            outcome = self.engine.handle(path, body)
        except SimRequestError as err:
            raise _refused(path, err) from err
        self.engine.stats.record(path, outcome)
        return outcome.payload


def _refused(path: str, err: SimRequestError) -> ServerError:
    return ServerError(
        f"simulated {path} refused the request ({err.status}): {err.message}",
        url=f"sim://in-process{path}",
        status=err.status,
    )


class SimPolicy(_InProcess):
    """In-process simulated policy (implements `Policy`)."""

    @property
    def model(self) -> str:
        return self.config.policy_model

    def _body(
        self,
        messages: Sequence[ChatMessage],
        n: int,
        params: SamplingParams | None,
        continue_final_message: bool,
    ) -> dict[str, Any]:
        """`ChatPolicy`'s own request body, so the simulator sees what an HTTP client sends."""
        return build_chat_body(
            self.model,
            messages,
            n=n,
            params=params or SamplingParams(),
            continue_final_message=continue_final_message,
        )

    async def generate(
        self,
        messages: Sequence[ChatMessage],
        *,
        n: int = 1,
        params: SamplingParams | None = None,
        continue_final_message: bool = False,
    ) -> Generation:
        """`n` choices of one prompt in one simulated request (exact per-choice token counts).

        The body and the parsing are `ChatPolicy`'s own, so the in-process simulator sees
        exactly what an HTTP client sends and answers it the same way.
        """
        body = self._body(messages, n, params, continue_final_message)
        payload = await self._call("/v1/chat/completions", body)
        return parse_chat_response(payload, n=n, url="sim://in-process/v1/chat/completions")

    async def generate_until(
        self,
        messages: Sequence[ChatMessage],
        *,
        n: int,
        stop: StopTest,
        params: SamplingParams | None = None,
        continue_final_message: bool = False,
    ) -> Generation:
        """`n` choices of one streamed simulated request, stopped once `stop` decides.

        The simulated stream is the HTTP server's (choices decoded step by step, the shortest
        finishing first) and is read by `ChatPolicy`'s own stream reader, without JSON or a
        socket; after the stop nothing more is generated, so the engine's stats count the
        cancelled choices' tokens up to that step (`streams.aborted` counts the request).
        """
        body = self._body(messages, n, params, continue_final_message)
        body.update(stream=True, stream_options=dict(STREAM_OPTIONS))
        if self.config.latency_ms > 0:
            await asyncio.sleep(self.config.latency_ms / 1000.0)
        try:
            stream = self.engine.chat_stream(body)
        except SimRequestError as err:
            raise _refused("/v1/chat/completions", err) from err
        sink = ChoiceStream(n, stop)
        try:
            for events in stream.steps():
                if any([sink.chunk(event) for event in events]):
                    break
        finally:
            self.engine.record_stream(stream)
        return sink.generation()


def prm_input(problem: str, steps: Sequence[str]) -> str:
    """Qwen2.5-Math-PRM input: steps joined by `<extra_0>` with a trailing tag, chat-templated."""
    answer = STEP_TAG.join(steps) + STEP_TAG
    messages = [
        Message("system", prompts.PRM_SYSTEM_PROMPT),
        Message("user", problem),
        Message("assistant", answer),
    ]
    return render_qwen(messages, add_generation_prompt=False, continue_final=False)


class SimPRM(_InProcess):
    """In-process simulated process reward model (implements `RewardModel`)."""

    @property
    def model(self) -> str:
        return self.config.prm_model

    async def score(self, problem: str, steps: Sequence[Sequence[str]]) -> Scores:
        """Per-step P(good) for each candidate, from one simulated `/pooling` request."""
        if not steps:
            return Scores([], Usage())
        body = {
            "model": self.model,
            "task": "token_classify",
            "input": [prm_input(problem, s) for s in steps],
        }
        payload = await self._call("/pooling", body)
        scores = [[float(row[1]) for row in item["data"]] for item in payload["data"]]
        return Scores(scores, Usage(1, payload["usage"]["prompt_tokens"], 0), source="prm")


class SimEmbedder(_InProcess):
    """In-process simulated embedding model (implements `Embedder`)."""

    @property
    def model(self) -> str:
        return self.config.embed_model

    async def embed(self, texts: Sequence[str]) -> Embeddings:
        """Unit vectors with the world's direction geometry, from one simulated request."""
        if not texts:
            return Embeddings([], Usage())
        body = {"model": self.model, "input": list(texts), "encoding_format": "float"}
        payload = await self._call("/v1/embeddings", body)
        vectors = [list(map(float, d["embedding"])) for d in payload["data"]]
        return Embeddings(vectors, Usage(1, payload["usage"]["prompt_tokens"], 0))


def sim_clients(config: SimConfig | None = None, **overrides: Any) -> dict[str, Any]:
    """A policy, a PRM and an embedder of one simulated world, as the factories' keywords.

    Args:
        config: The world (default: `SimConfig()`).
        **overrides: `SimConfig` fields replacing those of `config` (`seed=2`, ...).

    Returns:
        `{"policy": SimPolicy, "prm": SimPRM, "embedder": SimEmbedder}`.

    Examples:
        >>> from langgraph_tts import create_search_graph
        >>> graph = create_search_graph("dora", **sim_clients(seed=2), budget=4, seed=0)
        >>> graph.invoke({"problem": "What is 7 times 6?"})["result"]["strategy"]
        'dora'
    """
    world = SimConfig(**{**(config.model_dump() if config else {}), **overrides})
    return {"policy": SimPolicy(world), "prm": SimPRM(world), "embedder": SimEmbedder(world)}
