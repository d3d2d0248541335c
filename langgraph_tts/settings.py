"""Validated settings: the shared part every graph uses, and how a run's settings are resolved.

Settings are pydantic models that fail loudly: an unknown key names the closest valid one,
an invalid value names the field and what is allowed, and both are one-line `ConfigError`s
(which is also what Studio and the server API show, since LangGraph builds a run's context
with `ContextSchema(**context)`).

A graph is built with *bound* settings (its factory's keywords). A run changes only the fields
it sets: those of the run's context (`graph.invoke(..., context={"budget": 8})`) and, above
them, those of the input state's `settings` (how a parent graph configures a subgraph per
call). A context of a type this package does not know (a parent graph's own dataclass) is
ignored: the subgraph runs on its bound settings.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Iterable, Mapping
from typing import Annotated, Any, ClassVar, Literal, TypeVar, get_args
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from .errors import ConfigError

__all__ = [
    "ENV_SETTINGS",
    "CommonSettings",
    "SearchLoopSettings",
    "Settings",
    "check_keys",
    "format_validation",
    "overlay",
    "set_fields",
]

S = TypeVar("S", bound="Settings")


ENV_SETTINGS: dict[str, tuple[str, str | None]] = {
    "base_url": ("LANGGRAPH_TTS_BASE_URL", "http://127.0.0.1:8000/v1"),
    "model": ("LANGGRAPH_TTS_MODEL", "Qwen/Qwen2.5-1.5B-Instruct"),
    "api_key": ("LANGGRAPH_TTS_API_KEY", None),
    "prm_url": ("LANGGRAPH_TTS_PRM_URL", None),
    "prm_model": ("LANGGRAPH_TTS_PRM_MODEL", "Qwen/Qwen2.5-Math-PRM-7B"),
    "prm_template": ("LANGGRAPH_TTS_PRM_TEMPLATE", None),
    "embed_url": ("LANGGRAPH_TTS_EMBED_URL", None),
    "embed_model": ("LANGGRAPH_TTS_EMBED_MODEL", "BAAI/bge-m3"),
}
"""Settings read from the environment when not given: field -> (variable, fallback)."""


def _env(name: str) -> Any:
    variable, fallback = ENV_SETTINGS[name]
    return lambda: os.environ.get(variable, fallback)


def format_validation(err: ValidationError) -> str:
    """One line from a pydantic error: `invalid setting: budget: Input should be > 0`."""
    parts = []
    for e in err.errors():
        loc = ".".join(str(x) for x in e.get("loc", ())) or "setting"
        msg = str(e.get("msg", "invalid")).removeprefix("Value error, ")
        parts.append(f"{loc}: {msg}")
    return "invalid setting: " + "; ".join(parts)


def check_keys(keys: Iterable[str], known: Iterable[str], *, where: str = "setting") -> None:
    """Raise one `ConfigError` for the first unknown key, naming the closest known one."""
    valid = sorted(known)
    for key in keys:
        if key in valid:
            continue
        close = difflib.get_close_matches(key, valid, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        msg = f"unknown {where} {key!r}{hint} Valid: {', '.join(valid)}"
        raise ConfigError(msg)


def _check_url(value: str | None, name: str) -> str | None:
    if value is None or value == "":
        return None
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname or _has_space(value):
        msg = f"{name} must be an http(s) URL such as http://127.0.0.1:8000/v1, got {value!r}"
        raise ValueError(msg)
    try:
        _ = parts.port
    except ValueError as err:
        raise ValueError(f"{name} has an invalid port ({err}): {value!r}") from None
    return value.rstrip("/")


def _has_space(text: str) -> bool:
    return any(ch.isspace() for ch in text)


def _reject_booleans_as_numbers(data: dict[str, Any], fields: dict[str, Any]) -> None:
    """`budget=True` is not 1: pydantic's lax mode would take a bool for a number."""
    for key, value in data.items():
        if not isinstance(value, bool) or key not in fields:
            continue
        annotation = fields[key].annotation
        kinds = set(get_args(annotation)) or {annotation}
        if bool not in kinds and kinds & {int, float}:
            raise ConfigError(
                f"invalid setting: {key}: expected a number, got {str(value).lower()}"
            )


class Settings(BaseModel):
    """Base of every settings model: unknown keys and invalid values raise `ConfigError`."""

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True, frozen=True)
    checks: ClassVar[tuple[str, ...]] = ()
    """Names of cross-field rules (methods) run after validation; see `validate_rules`."""

    def __init__(self, **data: Any) -> None:
        check_keys(data, type(self).model_fields)
        _reject_booleans_as_numbers(data, type(self).model_fields)
        try:
            super().__init__(**data)
        except ValidationError as err:
            raise ConfigError(format_validation(err)) from None
        self.validate_rules()

    def validate_rules(self) -> None:
        """Cross-field rules; subclasses raise `ConfigError` naming the fields."""

    def values(self) -> dict[str, Any]:
        """Every field's value (objects kept as they are, unlike `model_dump`)."""
        return {name: getattr(self, name) for name in type(self).model_fields}


class CommonSettings(Settings):
    """What every graph shares: strategy and budget, endpoints, seed, hard caps, FLOPs."""

    strategy: Annotated[str, Field(description="Test-time scaling strategy.")] = "dora"
    budget: Annotated[
        int,
        Field(
            gt=0,
            le=4096,
            description="Rollout budget N: parallel rollouts per iteration for step-level "
            "search (DORA paper), N full samples for best-of-N and self-consistency.",
        ),
    ] = 16
    base_url: Annotated[
        str,
        Field(
            description="OpenAI-style base URL of the policy server (…/v1). Default: "
            "$LANGGRAPH_TTS_BASE_URL, else http://127.0.0.1:8000/v1."
        ),
    ] = Field(default_factory=_env("base_url"))
    model: Annotated[
        str,
        Field(
            min_length=1,
            description="Policy model name. Default: $LANGGRAPH_TTS_MODEL, else "
            "Qwen/Qwen2.5-1.5B-Instruct.",
        ),
    ] = Field(default_factory=_env("model"))
    api_key: Annotated[
        str | None,
        Field(
            description="API key sent to the servers (never logged). Default: "
            "$LANGGRAPH_TTS_API_KEY, else none.",
            repr=False,
        ),
    ] = Field(default_factory=_env("api_key"), repr=False)
    prm_url: Annotated[
        str | None,
        Field(
            description="Root URL of the vLLM PRM server (it serves /pooling). Empty: the "
            "policy judges solutions itself (generative verifier). Default: $LANGGRAPH_TTS_PRM_URL."
        ),
    ] = Field(default_factory=_env("prm_url"))
    prm_model: Annotated[
        str,
        Field(
            min_length=1,
            description="PRM model name. Default: $LANGGRAPH_TTS_PRM_MODEL, else "
            "Qwen/Qwen2.5-Math-PRM-7B.",
        ),
    ] = Field(default_factory=_env("prm_model"))
    prm_template: Annotated[
        str | None,
        Field(
            description="Client-side chat template of the PRM (qwen2.5), which lets one "
            "/pooling request score a whole iteration. Empty: derived from prm_model. "
            "Default: $LANGGRAPH_TTS_PRM_TEMPLATE."
        ),
    ] = Field(default_factory=_env("prm_template"))
    prm_batch: Annotated[
        Literal["auto", "on", "off"],
        Field(description="Score an iteration's candidates in one /pooling request."),
    ] = "auto"
    embed_url: Annotated[
        str | None,
        Field(
            description="OpenAI-style base URL of the embedding server (…/v1), for DORA. "
            "Default: $LANGGRAPH_TTS_EMBED_URL."
        ),
    ] = Field(default_factory=_env("embed_url"))
    embed_model: Annotated[
        str,
        Field(
            min_length=1,
            description="Embedding model name. Default: $LANGGRAPH_TTS_EMBED_MODEL, else "
            "BAAI/bge-m3.",
        ),
    ] = Field(default_factory=_env("embed_model"))
    embedder_kind: Annotated[
        Literal["auto", "server", "local", "hashing"],
        Field(
            description="Where DORA's embeddings come from: the embedding server, the local "
            "CPU model (extra `embed`), or the dependency-free hashing fallback (lower "
            "quality). `auto`: server if embed_url is set, else local if installed, else hashing."
        ),
    ] = "auto"
    max_concurrency: Annotated[
        int, Field(gt=0, le=4096, description="Requests in flight per server (and pool size).")
    ] = 64
    max_retries: Annotated[
        int,
        Field(
            ge=0,
            le=100,
            description="Retries of a failed model request (connection errors, 408, 429, 5xx; "
            "exponential backoff with jitter, `Retry-After` obeyed up to 60 s).",
        ),
    ] = 5
    request_timeout: Annotated[
        float,
        Field(
            gt=0,
            le=86400,
            description="Seconds one attempt of a model request may wait for its answer "
            "(long generations at large n take minutes).",
        ),
    ] = 600.0
    seed: Annotated[int | None, Field(description="Sampling seed (reproducible runs).")] = None
    max_samples: Annotated[
        int | None, Field(gt=0, description="Hard cap on policy samples per run.")
    ] = None
    max_tokens_cap: Annotated[
        int | None, Field(gt=0, description="Hard cap on policy completion tokens per run.")
    ] = None
    policy_params_b: Annotated[
        float | None, Field(ge=0, description="Policy parameters in billions (FLOPs).")
    ] = 1.5
    prm_params_b: Annotated[
        float | None, Field(ge=0, description="PRM parameters in billions (FLOPs).")
    ] = 7.0
    embed_params_b: Annotated[
        float | None, Field(ge=0, description="Embedder parameters in billions (FLOPs).")
    ] = 0.568

    @field_validator("base_url")
    @classmethod
    def _base_url(cls, value: str) -> str:
        checked = _check_url(value, "base_url")
        if checked is None:
            raise ValueError("base_url must not be empty")
        return checked

    @field_validator("prm_url", "embed_url")
    @classmethod
    def _optional_url(cls, value: str | None, info: Any) -> str | None:
        return _check_url(value, info.field_name)


class SearchLoopSettings(Settings):
    """Sampling and the search loop, shared by every strategy of the search graph."""

    temperature: Annotated[float, Field(ge=0.0, le=5.0, description="Policy temperature.")] = 0.8
    top_p: Annotated[float, Field(gt=0.0, le=1.0, description="Nucleus sampling p.")] = 1.0
    top_k: Annotated[int | None, Field(description="Top-k sampling (vLLM); None: off.")] = None
    thinking: Annotated[
        bool | None,
        Field(
            description="chat_template_kwargs.enable_thinking sent with every policy request "
            "(None: not sent)."
        ),
    ] = None
    max_step_tokens: Annotated[
        int, Field(gt=0, description="Token cap of one reasoning step (DORA: 256).")
    ] = 256
    max_total_tokens: Annotated[
        int, Field(gt=0, description="Token cap of one whole solution (DORA: 2048).")
    ] = 2048
    max_iterations: Annotated[
        int, Field(gt=0, le=1000, description="Search iterations; the last one runs to EOS.")
    ] = 40
    aggregation: Annotated[
        Literal["last", "min", "prod", "mean"],
        Field(description="How per-step PRM rewards become one score (DORA, Snell: last)."),
    ] = "last"
    vote: Annotated[
        Literal["default", "weighted", "majority", "best"],
        Field(
            description="Final answer rule: PRM-weighted majority, plain majority or best "
            "single score. `default`: the strategy's own (majority for cot and "
            "self_consistency, weighted otherwise)."
        ),
    ] = "default"
    stop_at_budget: Annotated[
        bool,
        Field(
            description="Stop once N solutions finished (DORA, DORA's beam search). Off: "
            "search until no candidate is active (search-and-learn's beam search)."
        ),
    ] = True
    discard_truncated_steps: Annotated[
        bool,
        Field(description="Drop candidates whose step hit max_step_tokens (DORA code)."),
    ] = True
    adaptive: Annotated[
        bool,
        Field(
            description="Adaptive compute: N becomes an average. Rounds of growing width "
            "(adaptive_start, x adaptive_growth, at most adaptive_cap x N) until the vote of "
            "the finished solutions is decided (docs/adaptive.md)."
        ),
    ] = False
    adaptive_start: Annotated[
        int | None,
        Field(
            gt=0, description="Adaptive: width of the first round (None: max(min(N, 4), N // 4))."
        ),
    ] = None
    adaptive_confidence: Annotated[
        float,
        Field(
            gt=0.5,
            lt=1.0,
            description="Adaptive: stop once P(leading answer beats the runner-up) under the "
            "Beta posterior of their PRM-weighted votes reaches this.",
        ),
    ] = 0.95
    adaptive_growth: Annotated[
        float, Field(gt=1.0, le=16.0, description="Adaptive: width factor from round to round.")
    ] = 2.0
    adaptive_cap: Annotated[
        float,
        Field(ge=1.0, le=64.0, description="Adaptive: most rollouts per iteration, as x N."),
    ] = 4.0
    adaptive_credit: Annotated[
        int | None,
        Field(
            ge=0,
            description="Adaptive: samples a run may spend beyond its fixed-N reference. None: "
            "(adaptive_cap - 1) x the reference, or 0 with adaptive_pool (the pool lends).",
        ),
    ] = None
    adaptive_cancel: Annotated[
        bool,
        Field(
            description="Adaptive majority vote (self-consistency): stream each round and "
            "close it once the stopping test decides, cancelling unfinished choices."
        ),
    ] = True
    adaptive_pool: Annotated[
        str | None,
        Field(
            description="Adaptive: name of a BudgetPool in this process (eval --adaptive makes "
            "one): an uncertain run borrows what easy runs saved, every run pays back its savings."
        ),
    ] = None


def set_fields(source: Any) -> dict[str, Any]:
    """The fields a run's context or state explicitly sets (a dict's keys, a model's set fields).

    Anything else (None, a parent graph's own context type) sets nothing.
    """
    if source is None:
        return {}
    if isinstance(source, Mapping):
        return dict(source)
    if isinstance(source, Settings):
        return {name: getattr(source, name) for name in source.model_fields_set}
    return {}


def overlay(bound: S, *sources: Any, strict: bool = False) -> S:
    """`bound` with the fields each source sets, later sources winning; validated again.

    With `strict`, a key the settings model does not know fails (a dict given for this graph);
    otherwise keys of a wider model (a parent graph's context) that this one lacks are skipped.
    """
    updates: dict[str, Any] = {}
    known = type(bound).model_fields
    for source in sources:
        fields = set_fields(source)
        if strict and isinstance(source, Mapping):
            check_keys(fields, known)
        updates.update({k: v for k, v in fields.items() if k in known})
    if not updates:
        return bound
    return type(bound)(**{**bound.values(), **updates})
