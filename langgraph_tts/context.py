"""Run-time settings of the prebuilt graphs (LangGraph `context_schema`).

Every field has the papers' value as its default and a description that LangGraph Studio shows
as a form. Values are validated by pydantic when the context is built, so a bad setting fails
with a message naming the field (`budget: Input should be greater than 0`). Endpoint fields
fall back to environment variables (`LANGGRAPH_TTS_BASE_URL`, ...), which is how `langgraph dev`
and the command line pick up a deployment.
"""

from __future__ import annotations

import os
from dataclasses import field, fields, replace
from typing import Annotated, Any, Literal, get_args

from pydantic import Field, field_validator
from pydantic.dataclasses import dataclass

from .compute_optimal.table import StrategyTable

__all__ = [
    "ENV_SETTINGS",
    "SCALE_STRATEGIES",
    "SEARCH_STRATEGIES",
    "STEP_STRATEGIES",
    "STRATEGIES",
    "ScaleContext",
    "SearchContext",
    "SearchStrategy",
    "Strategy",
    "with_overrides",
]

SearchStrategy = Literal["cot", "self_consistency", "best_of_n", "beam", "dvts", "rebase", "dora"]
"""Strategies of the search graph. `cot`, `self_consistency` and `best_of_n` sample whole
solutions; the others search step by step under a PRM."""
Strategy = Literal[
    "cot",
    "self_consistency",
    "best_of_n",
    "beam",
    "dvts",
    "rebase",
    "dora",
    "scale",
    "compute_optimal",
]
SEARCH_STRATEGIES: tuple[str, ...] = get_args(SearchStrategy)
STRATEGIES: tuple[str, ...] = get_args(Strategy)
STEP_STRATEGIES: tuple[str, ...] = ("beam", "dvts", "rebase", "dora")
SCALE_STRATEGIES: tuple[str, ...] = ("scale",)


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


def _check_url(value: str | None, name: str) -> str | None:
    if value is None or value == "":
        return None
    from urllib.parse import urlsplit

    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        msg = f"{name} must be an http(s) URL such as http://127.0.0.1:8000/v1, got {value!r}"
        raise ValueError(msg)
    return value.rstrip("/")


@dataclass(kw_only=True)
class SearchContext:
    """Settings of one run of the search graph (best-of-N, beam, DVTS, REBASE, DORA, ...)."""

    strategy: Annotated[
        Strategy, Field(description="Test-time scaling strategy (see docs/strategies.md).")
    ] = "dora"
    budget: Annotated[
        int,
        Field(
            gt=0,
            le=4096,
            description="Rollout budget N: parallel rollouts per iteration for step-level "
            "search (DORA paper), N full samples for best-of-N and self-consistency.",
        ),
    ] = 16

    # --- endpoints ---------------------------------------------------------------------------
    base_url: Annotated[
        str, Field(description="OpenAI-style base URL of the policy server (…/v1).")
    ] = field(default_factory=_env("base_url"))
    model: Annotated[str, Field(min_length=1, description="Policy model name.")] = field(
        default_factory=_env("model")
    )
    api_key: Annotated[
        str | None, Field(description="API key sent to the servers (never logged).")
    ] = field(default_factory=_env("api_key"), repr=False)
    prm_url: Annotated[
        str | None,
        Field(
            description="Root URL of the vLLM PRM server (it serves /pooling). Empty: the "
            "policy judges solutions itself (generative verifier)."
        ),
    ] = field(default_factory=_env("prm_url"))
    prm_model: Annotated[str, Field(min_length=1, description="PRM model name.")] = field(
        default_factory=_env("prm_model")
    )
    prm_template: Annotated[
        str | None,
        Field(
            description="Client-side chat template of the PRM (qwen2.5), which lets one "
            "/pooling request score a whole iteration. Empty: derived from prm_model."
        ),
    ] = field(default_factory=_env("prm_template"))
    embed_url: Annotated[
        str | None,
        Field(description="OpenAI-style base URL of the embedding server (…/v1), for DORA."),
    ] = field(default_factory=_env("embed_url"))
    embed_model: Annotated[str, Field(min_length=1, description="Embedding model name.")] = field(
        default_factory=_env("embed_model")
    )
    embedder: Annotated[
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

    # --- sampling ----------------------------------------------------------------------------
    temperature: Annotated[float, Field(ge=0.0, le=5.0, description="Policy temperature.")] = 0.8
    top_p: Annotated[float, Field(gt=0.0, le=1.0, description="Nucleus sampling p.")] = 1.0
    top_k: Annotated[int | None, Field(description="Top-k sampling (vLLM); None: off.")] = None
    seed: Annotated[int | None, Field(description="Sampling seed (reproducible runs).")] = None
    max_step_tokens: Annotated[
        int, Field(gt=0, description="Token cap of one reasoning step (DORA: 256).")
    ] = 256
    max_total_tokens: Annotated[
        int, Field(gt=0, description="Token cap of one whole solution (DORA: 2048).")
    ] = 2048
    max_iterations: Annotated[
        int, Field(gt=0, le=1000, description="Search iterations; the last one runs to EOS.")
    ] = 40

    # --- search ------------------------------------------------------------------------------
    beam_width: Annotated[
        int, Field(gt=0, description="Beam width M for beam search and DVTS (N/M kept).")
    ] = 4
    rebase_temperature: Annotated[
        float, Field(gt=0.0, description="T_b: softmax temperature of PRM scores (REBASE, DORA).")
    ] = 0.1
    similarity_temperature: Annotated[
        float,
        Field(gt=0.0, description="T_s: row-softmax temperature of cosine similarity (DORA)."),
    ] = 0.01
    dora_prefilter: Annotated[
        bool,
        Field(
            description="Released DORA code's variant: drop candidates REBASE gives 0 rollouts "
            "before applying semantic uniqueness. Off = the paper's Eq. 12-13."
        ),
    ] = False
    rounding: Annotated[
        Literal["largest_remainder", "code", "sequential_ceil"],
        Field(
            description="Integer rounding of rollout shares: largest remainder (sums to N, "
            "order-free), the DORA code's round-then-cyclic-pad, or original REBASE's "
            "sequential ceil (REBASE only)."
        ),
    ] = "largest_remainder"
    aggregation: Annotated[
        Literal["last", "min", "prod", "mean"],
        Field(description="How per-step PRM rewards become one score (DORA, Snell: last)."),
    ] = "last"
    vote: Annotated[
        Literal["default", "weighted", "majority", "best"],
        Field(
            description="Final answer rule: PRM-weighted majority, plain majority or best "
            "single score. `default`: majority for cot/self_consistency, weighted otherwise."
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
    prm_batch: Annotated[
        Literal["auto", "on", "off"],
        Field(description="Score an iteration's candidates in one /pooling request."),
    ] = "auto"

    # --- compute-optimal selection (Snell et al.) ---------------------------------------------
    table: Annotated[
        str | StrategyTable | None,
        Field(
            description="Strategy table of compute_optimal: a JSON file written by "
            "`langgraph-tts calibrate`, or the table itself (docs/compute_optimal.md)."
        ),
    ] = None
    difficulty_samples: Annotated[
        int,
        Field(
            gt=0,
            le=256,
            description="k: whole samples (one request, n=k) whose mean last-step PRM score "
            "estimates a problem's difficulty for compute_optimal; charged to the ledger.",
        ),
    ] = 8

    # --- hard caps and FLOPs -----------------------------------------------------------------
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

    @property
    def vote_rule(self) -> Literal["weighted", "majority", "best"]:
        """The voting rule in force once `default` is resolved for the strategy."""
        if self.vote != "default":
            return self.vote
        return "majority" if self.strategy in ("cot", "self_consistency") else "weighted"


@dataclass(kw_only=True)
class ScaleContext(SearchContext):
    """Settings of SCALE (decompose, assess, route to System-1/System-2, solve in sequence).

    Inherits the search settings: a System-2 sub-problem may be solved by any search strategy
    (`system2_strategy`), which is what neither paper does.
    """

    tau: Annotated[
        float,
        Field(ge=0.0, le=1.0, description="Difficulty threshold: System-2 when score > tau."),
    ] = 0.5
    outline_versions: Annotated[
        int, Field(gt=0, le=32, description="Outline versions sampled by decompose.")
    ] = 8
    outline_selection: Annotated[
        Literal["llm", "vote", "first"],
        Field(
            description="How one outline is chosen: the model picks (SCALE code), a "
            "consistency vote on the number of sub-problems, or the first valid one."
        ),
    ] = "llm"
    difficulty_mode: Annotated[
        Literal["sequential", "upfront"],
        Field(
            description="sequential: assess each sub-problem just before solving it, with "
            "earlier solutions in context (paper); upfront: all at once from descriptions (code)."
        ),
    ] = "sequential"
    force_last_hard: Annotated[
        bool, Field(description="Score the final sub-problem 0.9 (SCALE code).")
    ] = True
    format_retries: Annotated[
        int, Field(ge=0, le=10, description="Retries on unusable outline/difficulty output.")
    ] = 3
    system1_model: Annotated[
        str | None, Field(description="System-1 model (default: the policy model).")
    ] = None
    system1_base_url: Annotated[
        str | None, Field(description="System-1 server (default: base_url).")
    ] = None
    system1_temperature: Annotated[float, Field(ge=0.0, le=5.0)] = 0.7
    system1_top_p: Annotated[float, Field(gt=0.0, le=1.0)] = 0.8
    system1_top_k: Annotated[int | None, Field()] = 20
    system1_max_tokens: Annotated[int, Field(gt=0)] = 4096
    system1_thinking: Annotated[
        bool | None,
        Field(description="chat_template_kwargs.enable_thinking for System-1 (None: not sent)."),
    ] = False
    system2_model: Annotated[
        str | None, Field(description="System-2 model (default: the policy model).")
    ] = None
    system2_base_url: Annotated[
        str | None, Field(description="System-2 server (default: base_url).")
    ] = None
    system2_temperature: Annotated[float, Field(ge=0.0, le=5.0)] = 0.6
    system2_top_p: Annotated[float, Field(gt=0.0, le=1.0)] = 0.95
    system2_top_k: Annotated[int | None, Field()] = 20
    system2_max_tokens: Annotated[int, Field(gt=0)] = 16384
    system2_thinking: Annotated[
        bool | None,
        Field(description="chat_template_kwargs.enable_thinking for System-2 (None: not sent)."),
    ] = True
    system1_params_b: Annotated[
        float | None,
        Field(ge=0, description="System-1 parameters in billions, for FLOPs (None: policy's)."),
    ] = None
    system2_params_b: Annotated[
        float | None,
        Field(ge=0, description="System-2 parameters in billions, for FLOPs (None: policy's)."),
    ] = None
    system2_strategy: Annotated[
        Literal["single", "self_consistency", "best_of_n", "dora", "rebase", "beam", "dvts"],
        Field(
            description="How a System-2 sub-problem is solved: one thinking sample (paper) "
            "or a search strategy over that sub-problem."
        ),
    ] = "single"
    system2_budget: Annotated[
        int, Field(gt=0, le=1024, description="Budget of system2_strategy per sub-problem.")
    ] = 4

    @field_validator("system1_base_url", "system2_base_url")
    @classmethod
    def _system_urls(cls, value: str | None, info: Any) -> str | None:
        return _check_url(value, info.field_name)


def with_overrides(ctx: SearchContext, **overrides: Any) -> SearchContext:
    """A copy of `ctx` with some fields replaced (validated again); unknown names fail."""
    known = {f.name for f in fields(ctx)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        from .errors import ConfigError

        msg = f"unknown setting(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}"
        raise ConfigError(msg)
    return replace(ctx, **overrides)
