"""`SimConfig`: the knobs of the simulated world and of the simulated servers' misbehaviour."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, ValidationInfo, field_validator

__all__ = ["SimConfig"]


class SimConfig(BaseModel):
    """Everything that shapes the simulator; validated, immutable, with one-line errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    scenario: Literal["default", "popular_worse", "easy", "hard"] = "default"
    """Which family of latent worlds problems map to (see docs/simulator.md)."""
    seed: int = 0
    """World seed: the same text, scenario and seed always give the same latent problem."""
    latency_ms: float = 0.0
    """Sleep added to every model request (in the handler thread, so requests overlap)."""
    fail_rate: float = 0.0
    """Probability that a model request starts a fault burst."""
    fail_status: Literal[503, 429] = 503
    """Status of injected failures; 429 responses carry `Retry-After` (`retry_after_s`)."""
    retry_after_s: float = 0.0
    """`Retry-After` of injected failures: always sent with a 429, with a 503 when > 0."""
    burst_len: int = 2
    """Consecutive failures per burst; the request after a burst always gets through."""
    malformed_rate: float = 0.0
    """Probability of a 200 response whose JSON body is cut short."""
    slow_rate: float = 0.0
    """Probability that a response is delayed by a further `slow_ms`."""
    slow_ms: float = 500.0
    reset_rate: float = 0.0
    """Probability that the connection is reset halfway through a 200 response's body."""
    wrong_rows_rate: float = 0.0
    """Probability that a `/pooling` response has one step row too many in each result."""
    wrong_dim_rate: float = 0.0
    """Probability that an `/v1/embeddings` response has vectors of half the dimension."""
    outage_every_s: float = 0.0
    """Every this many seconds the server dies (connections reset, connects refused) for
    `outage_s`, then comes back on the same port; 0 = never. Single-process servers only."""
    outage_s: float = 1.0
    prm_noise: float = 0.8
    """Std of the logit-space noise on PRM scores; 0 makes the PRM an exact oracle."""
    prm_miss_rate: float | None = None
    """Probability that the PRM (or verifier) overlooks a chain's first wrong step; None uses
    each direction's own `subtlety`. Unused when the noise is 0 (the oracle sees everything)."""
    prm_foresight: float = 0.5
    """Share of a right-looking chain's remaining risk the PRM sees (1 = calibrated to the
    direction's success rate). Small values make PRM scores of different directions close,
    as with real PRMs that judge the steps written so far. Unused when the noise is 0."""
    verifier_noise: float = 1.5
    """Std of the logit-space noise of the generative verifier's P(Yes)."""
    ramble_rate: float = 0.03
    """Probability that a step rambles far past 256 tokens (so a per-step cap cuts it)."""
    embed_dim: int = 256
    max_model_len: int = 32768
    """Context window the models report in `/v1/models` and enforce as vLLM 0.32 does: 400 for
    `max_tokens` above it or a prompt that fills it, `max_tokens` lowered to what the prompt
    leaves otherwise."""
    eos_id_share: float = 0.25
    """Share of solutions that end at a generation-config EOS id (`stop_reason: 151643`, as
    Qwen2.5 emits `<|endoftext|>`) instead of the tokenizer's EOS (`stop_reason: null`)."""
    decode_ms: float = 0.0
    """Streamed requests (`stream: true`): sleep per decoding step, i.e. per `stream_interval`
    tokens of every choice, so that a client can close the stream while choices are still
    being generated (0: stream as fast as possible, yielding between steps)."""
    stream_interval: int = 1
    """Tokens per streamed chunk of a choice (vLLM's `--stream-interval`)."""
    ignore_formats: bool = False
    """SCALE requests get prose instead of JSON / numbers (exercises the fallbacks)."""
    policy_model: str = "sim-policy"
    prm_model: str = "sim-prm"
    embed_model: str = "sim-embed"

    @field_validator(
        "fail_rate",
        "malformed_rate",
        "slow_rate",
        "reset_rate",
        "wrong_rows_rate",
        "wrong_dim_rate",
        "prm_miss_rate",
        "prm_foresight",
        "ramble_rate",
        "eos_id_share",
    )
    @classmethod
    def _probability(cls, v: float | None, info: ValidationInfo) -> float | None:
        if v is not None and not 0.0 <= v <= 1.0:
            raise ValueError(f"{info.field_name} must be a probability in [0, 1], got {v}")
        return v

    @field_validator(
        "latency_ms",
        "decode_ms",
        "slow_ms",
        "retry_after_s",
        "outage_every_s",
        "outage_s",
        "prm_noise",
        "verifier_noise",
    )
    @classmethod
    def _non_negative(cls, v: float, info: ValidationInfo) -> float:
        if not v >= 0.0 or v == float("inf"):
            raise ValueError(f"{info.field_name} must be a finite number >= 0, got {v}")
        return v

    @field_validator("burst_len")
    @classmethod
    def _burst(cls, v: int) -> int:
        if not 1 <= v <= 1000:
            raise ValueError(f"burst_len must be between 1 and 1000, got {v}")
        return v

    @field_validator("stream_interval")
    @classmethod
    def _interval(cls, v: int) -> int:
        if not 1 <= v <= 4096:
            raise ValueError(f"stream_interval must be between 1 and 4096, got {v}")
        return v

    @field_validator("embed_dim")
    @classmethod
    def _dim(cls, v: int) -> int:
        if not 8 <= v <= 8192:
            raise ValueError(f"embed_dim must be between 8 and 8192, got {v}")
        return v

    @field_validator("max_model_len")
    @classmethod
    def _window(cls, v: int) -> int:
        if not 256 <= v <= 1 << 20:
            raise ValueError(f"max_model_len must be between 256 and 1048576, got {v}")
        return v

    @field_validator("policy_model", "prm_model", "embed_model")
    @classmethod
    def _name(cls, v: str, info: ValidationInfo) -> str:
        if not v.strip():
            raise ValueError(f"{info.field_name} must be a non-empty model name")
        return v
