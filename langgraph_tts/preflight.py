"""Fast checks that the configured servers are up and serve the configured models.

A dead server would otherwise cost a run its full retry schedule before failing; here it fails
in about a second with the URL and the command that would start it. A policy whose
`max_model_len` is below the run's largest `max_tokens` is named in a warning: the client will
cap those requests to the window.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from .clients._http import Backoff, HTTPClient, Role
from .clients.policy import model_len_of
from .errors import ConfigError, ServerError, ServerUnavailableError
from .serving import RECIPE_PROMPT_ROOM

__all__ = ["check_servers", "largest_max_tokens", "window_warning"]

logger = logging.getLogger(__name__)

PREFLIGHT_TIMEOUT_S = 5.0
PREFLIGHT_CONNECT_TIMEOUT_S = 2.0
PREFLIGHT_BACKOFF = Backoff(initial_s=0.2, max_s=0.2, retry_after_cap_s=1.0)


async def _served_models(base: str, role: Role, api_key: str | None) -> dict[str, Any]:
    """`GET {base}/models` with one quick retry; the HTTP core maps failures to our errors."""
    client = HTTPClient(
        base,
        role=role,
        api_key=api_key,
        timeout_s=PREFLIGHT_TIMEOUT_S,
        connect_timeout_s=PREFLIGHT_CONNECT_TIMEOUT_S,
        max_retries=1,
        max_concurrency=1,
        backoff=PREFLIGHT_BACKOFF,
    )
    try:
        data = await client.get("/models")
    except ServerUnavailableError:
        raise
    except ServerError as err:
        if err.status is not None and (200 <= err.status < 300 or err.status in (404, 405)):
            raise _not_openai(base, role, _what_came_back(err)) from None
        raise
    finally:
        await client.aclose()
    if not isinstance(data.get("data"), list):
        raise _not_openai(base, role, f"JSON that is not a model list: {json.dumps(data)[:120]}")
    return data


def _what_came_back(err: ServerError) -> str:
    text = str(err)
    if err.status == 404 or err.status == 405:
        return f"HTTP {err.status}"
    if "<html" in text.lower() or "<!doctype" in text.lower():
        return "an HTML page"
    return "a body that is not JSON"


def _not_openai(base: str, role: Role, what: str) -> ServerError:
    """The server answered, but not as vLLM's OpenAI-compatible server does."""
    hint = "the server root, which serves /pooling" if role == "prm" else "vLLM's OpenAI /v1 URL"
    flag = {"policy": "--base-url", "prm": "--prm-url", "embed": "--embed-url"}[role]
    url = base.removesuffix("/v1") if role == "prm" else base
    return ServerError(
        f"the {role} server at {url} is not a vLLM (OpenAI-compatible) server: GET "
        f"{base}/models answered {what}; set {flag} to {hint}, e.g. "
        f"{'http://127.0.0.1:8001' if role == 'prm' else 'http://127.0.0.1:8000/v1'}",
        url=base + "/models",
    )


def _ids(data: dict[str, Any]) -> list[str]:
    models = data.get("data")
    if not isinstance(models, list):
        return []
    return [str(m["id"]) for m in models if isinstance(m, dict) and "id" in m]


def largest_max_tokens(ctx: Any) -> tuple[int, str]:
    """The largest `max_tokens` the run may send the policy, and the setting that sets it."""
    options = [(ctx.max_total_tokens, "max_total_tokens")]
    if ctx.strategy == "scale":
        options += [
            (ctx.system1_max_tokens, "system1_max_tokens"),
            (ctx.system2_max_tokens, "system2_max_tokens"),
        ]
    return max(options)


def window_warning(ctx: Any, model: str, url: str, max_model_len: int | None) -> str:
    """What to tell the user when the policy's window is below the run's `max_tokens` ("" when
    it is not, or the server does not say)."""
    largest, setting = largest_max_tokens(ctx)
    if max_model_len is None or largest <= max_model_len:
        return ""
    return (
        f"the policy server at {url} serves {model} with max_model_len={max_model_len}: "
        f"requests for {setting}={largest} tokens will be capped to {max_model_len} (start it "
        f"with --max-model-len {largest + RECIPE_PROMPT_ROOM}, or lower {setting})"
    )


def _require(model: str, served: list[str], url: str, role: str) -> None:
    if served and model not in served:
        msg = (
            f"the {role} server at {url} does not serve model {model!r}; it serves "
            f"{', '.join(served)} (set --{'model' if role == 'policy' else role + '-model'})"
        )
        raise ConfigError(msg)


async def check_servers(ctx: Any) -> None:
    """Raise `ServerUnavailableError`/`ConfigError` unless every needed server answers."""
    if ctx.prm_url and ctx.prm_url.rstrip("/").endswith("/v1"):
        msg = f"prm_url is the server root (vLLM serves /pooling there): drop the /v1 from {ctx.prm_url}"
        raise ConfigError(msg)
    checks: list[tuple[str, str, Role]] = [(ctx.base_url, ctx.model, "policy")]
    if ctx.prm_url:
        checks.append((ctx.prm_url + "/v1", ctx.prm_model, "prm"))
    from .strategies import get_strategy

    inner = getattr(ctx, "system2_strategy", "single")
    needs_embed = get_strategy(ctx.strategy).needs_embeddings or (
        ctx.strategy == "scale" and inner != "single" and get_strategy(inner).needs_embeddings
    )
    if ctx.embed_url and needs_embed and ctx.embedder_kind in ("auto", "server"):
        checks.append((ctx.embed_url, ctx.embed_model, "embed"))
    if ctx.strategy == "scale":
        for url, model in (
            (ctx.system1_base_url, ctx.system1_model),
            (ctx.system2_base_url, ctx.system2_model),
        ):
            if url or model:
                checks.append((url or ctx.base_url, model or ctx.model, "policy"))
    for base, model, role in dict.fromkeys(checks):
        data = await _served_models(base, role, ctx.api_key)
        _require(model, _ids(data), base.removesuffix("/v1") if role == "prm" else base, role)
        warning = window_warning(ctx, model, base, model_len_of(data, model))
        if role == "policy" and warning:
            logger.warning(warning)
