"""Fast checks that the configured servers are up and serve the configured models.

A dead server would otherwise cost a run its full retry schedule before failing; here it fails
in about a second with the URL and the command that would start it.
"""

from __future__ import annotations

import asyncio

import httpx

from .context import ScaleContext, SearchContext
from .errors import ConfigError, ServerError, ServerUnavailableError

__all__ = ["check_servers"]

PREFLIGHT_TIMEOUT_S = 5.0


async def _served_models(
    client: httpx.AsyncClient, models_url: str, role: str, shown_url: str
) -> list[str]:
    last: Exception | None = None
    for _ in range(2):
        try:
            response = await client.get(models_url)
            break
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.ReadTimeout) as err:
            last = err
            await asyncio.sleep(0.2)
    else:
        raise ServerUnavailableError(shown_url, role=role, cause=type(last).__name__) from None
    if response.status_code != 200:
        msg = f"the {role} server at {models_url} answered HTTP {response.status_code}"
        raise ServerError(msg, url=models_url, status=response.status_code)
    try:
        return [str(m["id"]) for m in response.json().get("data", [])]
    except (ValueError, KeyError, TypeError, AttributeError):
        return []


def _require(model: str, served: list[str], url: str, role: str) -> None:
    if served and model not in served:
        msg = (
            f"the {role} server at {url} does not serve model {model!r}; it serves "
            f"{', '.join(served)} (set --{'model' if role == 'policy' else role + '-model'})"
        )
        raise ConfigError(msg)


async def check_servers(ctx: SearchContext) -> None:
    """Raise `ServerUnavailableError`/`ConfigError` unless every needed server answers."""
    if ctx.prm_url and ctx.prm_url.rstrip("/").endswith("/v1"):
        msg = f"prm_url is the server root (vLLM serves /pooling there): drop the /v1 from {ctx.prm_url}"
        raise ConfigError(msg)
    checks: list[tuple[str, str, str]] = [(ctx.base_url, ctx.model, "policy")]
    if ctx.prm_url:
        checks.append((ctx.prm_url + "/v1", ctx.prm_model, "prm"))
    needs_embed = ctx.strategy == "dora" or (
        isinstance(ctx, ScaleContext) and ctx.system2_strategy == "dora"
    )
    if ctx.embed_url and needs_embed and ctx.embedder in ("auto", "server"):
        checks.append((ctx.embed_url, ctx.embed_model, "embed"))
    if isinstance(ctx, ScaleContext) and ctx.strategy == "scale":
        for url, model in (
            (ctx.system1_base_url, ctx.system1_model),
            (ctx.system2_base_url, ctx.system2_model),
        ):
            if url or model:
                checks.append((url or ctx.base_url, model or ctx.model, "policy"))
    headers = {"Authorization": f"Bearer {ctx.api_key}"} if ctx.api_key else {}
    timeout = httpx.Timeout(PREFLIGHT_TIMEOUT_S, connect=2.0)
    async with httpx.AsyncClient(timeout=timeout, headers=headers) as client:
        for base, model, role in dict.fromkeys(checks):
            shown = base.removesuffix("/v1") if role == "prm" else base
            served = await _served_models(client, base.rstrip("/") + "/models", role, shown)
            _require(model, served, shown, role)
