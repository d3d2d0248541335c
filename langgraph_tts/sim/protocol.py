"""vLLM wire-protocol details shared by the simulated endpoints: validation, errors, templates.

Error bodies, defaults and validation rules follow vLLM's OpenAI-compatible server so that
clients see the same failures against the simulator as against a real deployment.
"""

from __future__ import annotations

import functools
import random
import re
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from langgraph_tts.sim.world import count_tokens

__all__ = [
    "GENERATION_EOS_ID",
    "MAX_MODEL_LEN",
    "Message",
    "SimRequestError",
    "cached_count_tokens",
    "context_error",
    "get_bool",
    "get_float",
    "get_int",
    "get_messages",
    "get_stop",
    "new_id",
    "parse_qwen_prompt",
    "piece_ids",
    "prompt_tokens",
    "render_qwen",
    "token_ids",
    "token_pieces",
]

MAX_MODEL_LEN = 32768
"""Default context length the simulated models report and enforce (`SimConfig.max_model_len`)."""
GENERATION_EOS_ID = 151643
"""Qwen2.5's `<|endoftext|>`: in its generation config's `eos_token_id` but not the tokenizer's
EOS, so vLLM adds it to `stop_token_ids` and reports it as an integer `stop_reason`."""
_VOCAB = 151643
_CHUNK_SEP = "\n\n"
_PIECE_RE = re.compile(r"\s*(?:\w+|[^\w\s])")
_QWEN_BLOCK_RE = re.compile(r"<\|im_start\|>(\w+)\n(.*?)(<\|im_end\|>|$)", re.DOTALL)
_ERROR_TYPES = {400: "BadRequestError", 404: "NotFoundError", 500: "InternalServerError"}


class SimRequestError(Exception):
    """A request the simulated server refuses, carried as vLLM's error body."""

    def __init__(self, status: int, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param

    def body(self) -> dict[str, Any]:
        """vLLM's JSON error body (`{"error": {...}}`)."""
        err_type = _ERROR_TYPES.get(self.status, "BadRequestError")
        error = {"message": self.message, "type": err_type, "param": self.param}
        return {"error": {**error, "code": self.status}}


def context_error(max_model_len: int, n_prompt: int) -> SimRequestError:
    """vLLM 0.32's 400 for a prompt that leaves no room in the context window."""
    return SimRequestError(
        400,
        f"This model's maximum context length is {max_model_len} tokens. However, your "
        f"prompt contains {n_prompt} input tokens, which exceeds this limit even without any "
        "output tokens. Please reduce the length of the input prompt.",
        "input_tokens",
    )


@dataclass(frozen=True, slots=True)
class Message:
    role: str
    content: str


def new_id(prefix: str) -> str:
    """Response ids look like vLLM's (`chatcmpl-<hex>`, `cmpl-<hex>`, `pool-<hex>`...).

    Drawn from `random`, not `uuid4`: an `os.urandom` call per response lets the handler
    threads fight over the GIL, and ids need to be unique, not secret.
    """
    return f"{prefix}-{random.getrandbits(128):032x}"


def token_pieces(text: str) -> list[str]:
    """The tokens of `text` with their leading whitespace (count == `count_tokens(text)`)."""
    return _PIECE_RE.findall(text)


@functools.lru_cache(maxsize=1 << 16)
def _piece_id(piece: str) -> int:
    return zlib.crc32(piece.strip().encode("utf-8")) % _VOCAB


@functools.lru_cache(maxsize=1 << 14)
def _chunk_ids(chunk: str) -> tuple[int, ...]:
    return tuple(_piece_id(p) for p in token_pieces(chunk))


@functools.lru_cache(maxsize=1 << 14)
def _chunk_tokens(chunk: str) -> int:
    return count_tokens(chunk)


def token_ids(text: str) -> list[int]:
    """Stable fake vocabulary ids of the tokens of `text`.

    Computed per blank-line chunk and cached: whitespace never belongs to a token and ids
    ignore it, so the chunks' ids concatenate to the text's. Prompts repeat the problem and
    earlier steps in every request; each chunk is tokenized once.
    """
    return [i for chunk in text.split(_CHUNK_SEP) for i in _chunk_ids(chunk)]


def piece_ids(pieces: Sequence[str]) -> list[int]:
    """Fake vocabulary ids of token pieces (as `token_ids` gives them for a whole text)."""
    return [_piece_id(p) for p in pieces if p.strip()]


def cached_count_tokens(text: str) -> int:
    """`count_tokens(text)`, computed per blank-line chunk and cached (see `token_ids`)."""
    return sum(_chunk_tokens(chunk) for chunk in text.split(_CHUNK_SEP))


def prompt_tokens(messages: Sequence[Message]) -> int:
    """Chat prompt tokens: message contents plus 3 template tokens per message."""
    return sum(cached_count_tokens(m.content) + 3 for m in messages)


def render_qwen(
    messages: Sequence[Message], *, add_generation_prompt: bool, continue_final: bool
) -> str:
    """The Qwen2.5 chat template (also the canonical prompt text that seeds sampling)."""
    out = []
    for i, m in enumerate(messages):
        if continue_final and i == len(messages) - 1 and m.role == "assistant":
            out.append(f"<|im_start|>assistant\n{m.content}")
            return "".join(out)
        out.append(f"<|im_start|>{m.role}\n{m.content}<|im_end|>\n")
    if add_generation_prompt:
        out.append("<|im_start|>assistant\n")
    return "".join(out)


def parse_qwen_prompt(prompt: str) -> tuple[list[Message], bool] | None:
    """Messages of a Qwen2.5-templated prompt, and whether the last assistant turn is open."""
    blocks = list(_QWEN_BLOCK_RE.finditer(prompt))
    if not blocks:
        return None
    messages = [Message(b.group(1), b.group(2)) for b in blocks]
    open_turn = blocks[-1].group(3) == "" and messages[-1].role == "assistant"
    return messages, open_turn


def _bad(name: str, what: str, value: object) -> SimRequestError:
    return SimRequestError(400, f"{name}: {what}, got {value!r}")


def get_int(
    body: Mapping[str, Any], name: str, default: int | None, *, lo: int | None = None
) -> int | None:
    """An optional integer field (bools are not integers here, as in pydantic strict mode)."""
    v = body.get(name)
    if v is None:
        return default
    if isinstance(v, bool) or not isinstance(v, int | float) or int(v) != v:
        raise _bad(name, "must be an integer", v)
    if lo is not None and v < lo:
        raise _bad(name, f"must be at least {lo}", v)
    return int(v)


def get_float(
    body: Mapping[str, Any],
    name: str,
    default: float,
    *,
    lo: float | None = None,
    hi: float | None = None,
    lo_open: bool = False,
) -> float:
    """An optional number field with vLLM's range rules."""
    v = body.get(name)
    if v is None:
        return default
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise _bad(name, "must be a number", v)
    bad_lo = lo is not None and (v <= lo if lo_open else v < lo)
    if bad_lo or (hi is not None and v > hi):
        interval = f"{'(' if lo_open else '['}{lo}, {hi}]"
        raise _bad(name, f"must be in {interval}", v)
    return float(v)


def get_bool(body: Mapping[str, Any], name: str, default: bool) -> bool:
    v = body.get(name)
    if v is None:
        return default
    if not isinstance(v, bool):
        raise _bad(name, "must be a boolean", v)
    return v


def get_stop(body: Mapping[str, Any]) -> list[str]:
    """`stop` as a list; vLLM rejects empty stop strings."""
    v = body.get("stop")
    if v is None:
        return []
    stops = [v] if isinstance(v, str) else v
    if not isinstance(stops, list) or not all(isinstance(s, str) for s in stops):
        raise _bad("stop", "must be a string or a list of strings", v)
    if any(s == "" for s in stops):
        raise SimRequestError(400, "stop cannot contain an empty string.")
    return stops


def _content_text(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            if isinstance(part, dict) and part.get("type") == "text":
                parts.append(str(part.get("text", "")))
            elif isinstance(part, str):
                parts.append(part)
            else:
                raise _bad("messages", "only text content parts are supported", part)
        return "".join(parts)
    raise _bad("messages", "content must be a string or a list of text parts", content)


def get_messages(body: Mapping[str, Any]) -> list[Message]:
    """OpenAI chat messages (string or text-part content) as `Message`s."""
    raw = body.get("messages")
    if not isinstance(raw, list) or not raw:
        raise SimRequestError(400, "messages: must be a non-empty list of chat messages")
    out = []
    for m in raw:
        if not isinstance(m, dict) or not isinstance(m.get("role"), str):
            raise _bad("messages", "each message needs a string 'role'", m)
        if m["role"] not in {"system", "developer", "user", "assistant", "tool"}:
            raise _bad("messages", "unknown role", m["role"])
        role = "system" if m["role"] == "developer" else m["role"]
        out.append(Message(role, _content_text(m.get("content"))))
    return out
