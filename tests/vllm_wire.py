"""vLLM's own contract, as exported by scripts/vllm_contract.py into tests/vllm_contract/, and
the simulator's engine behind a loopback server that records every exchange to check."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import httpx
from jsonschema import Draft202012Validator
from loopback import LoopbackServer

from langgraph_tts.clients import Transport
from langgraph_tts.sim.config import SimConfig
from langgraph_tts.sim.engine import SimEngine
from langgraph_tts.sim.protocol import SimRequestError

CONTRACT = Path(__file__).resolve().parent / "vllm_contract"

REQUEST_SCHEMAS = {
    "/v1/chat/completions": "ChatCompletionRequest",
    "/v1/completions": "CompletionRequest",
    "/v1/embeddings": "EmbeddingCompletionRequest",
}
RESPONSE_SCHEMAS = {
    "/v1/chat/completions": "ChatCompletionResponse",
    "/v1/completions": "CompletionResponse",
    "/pooling": "PoolingResponse",
    "/v1/embeddings": "EmbeddingResponse",
    "/v1/models": "ModelList",
}


def manifest() -> dict[str, Any]:
    return json.loads((CONTRACT / "manifest.json").read_text())


def fixture(name: str) -> dict[str, Any]:
    return json.loads((CONTRACT / "fixtures" / f"{name}.json").read_text())


@cache
def schema(name: str) -> dict[str, Any]:
    return json.loads((CONTRACT / "schemas" / f"{name}.json").read_text())  # type: ignore[no-any-return]


def request_schema(path: str, body: dict[str, Any]) -> str:
    """The vLLM request model a body is validated as (pooling: by its form)."""
    if path == "/pooling":
        return "PoolingChatRequest" if "messages" in body else "PoolingCompletionRequest"
    return REQUEST_SCHEMAS[path]


def violations(instance: Any, name: str) -> list[str]:
    """Where `instance` breaks schema `name`: JSON Schema errors, plus keys the model does not
    declare (vLLM accepts and IGNORES unknown request keys, so a misspelt field is silent)."""
    root = schema(name)
    validator = Draft202012Validator(root)
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(instance)]
    return errors + [f"undeclared key {k!r}" for k in _undeclared(instance, root, root)]


def _resolve(node: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        return _resolve(root["$defs"][ref.removeprefix("#/$defs/")], root)
    return node


def _undeclared(value: Any, node: dict[str, Any], root: dict[str, Any], at: str = "") -> list[str]:
    """Keys of `value` missing from the declared properties, recursively (through `anyOf`
    options that declare properties, `items` and `$ref`)."""
    node = _resolve(node, root)
    out: list[str] = []
    for option in node.get("anyOf", []):
        option = _resolve(option, root)
        if (isinstance(value, dict) and "properties" in option) or (
            isinstance(value, list) and "items" in option
        ):
            out += _undeclared(value, option, root, at)
    if isinstance(value, dict) and "properties" in node:
        props = node["properties"]
        out += [f"{at}{k}" for k in value if k not in props]
        for key, sub in value.items():
            if key in props:
                out += _undeclared(sub, props[key], root, f"{at}{key}.")
    if isinstance(value, list) and isinstance(node.get("items"), dict):
        for item in value:
            out += _undeclared(item, node["items"], root, f"{at}[].")
    return out


@dataclass
class Exchange:
    """One request and the simulator's answer."""

    method: str
    path: str
    body: dict[str, Any] | None
    status: int
    payload: dict[str, Any]


@dataclass
class SimWire:
    """The simulator's endpoints as a transport (no socket), recording every exchange."""

    config: SimConfig = field(default_factory=SimConfig)
    exchanges: list[Exchange] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.engine = SimEngine(self.config)
        self._server = LoopbackServer(self._handle)

    def exchange(self, method: str, path: str, content: bytes) -> tuple[int, dict[str, Any]]:
        body = json.loads(content) if method == "POST" else None
        try:
            if method == "GET" and path == "/v1/models":
                status, payload = 200, self.engine.models()
            else:
                status, payload = 200, self.engine.handle(path, body or {}).payload
        except SimRequestError as err:
            status, payload = err.status, err.body()
        self.exchanges.append(Exchange(method, path, body, status, payload))
        return status, payload

    def _handle(self, request: httpx.Request) -> httpx.Response:
        status, payload = self.exchange(request.method, request.url.path, request.content)
        return httpx.Response(status, json=payload)

    @property
    def transport(self) -> Transport:
        return self._server.transport

    def posts(self) -> list[Exchange]:
        return [e for e in self.exchanges if e.method == "POST"]
