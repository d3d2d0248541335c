"""Export vLLM's own request schemas and response fixtures into tests/vllm_contract/.

    python scripts/vllm_contract.py --version 0.32.0          # downloads the wheel with pip
    python scripts/vllm_contract.py --wheel vllm-0.32.0-*.whl  # or uses one you have

It unpacks the wheel's Python files (no install), imports the protocol modules with the
heavy modules stubbed (torch, transformers, the engine, the renderers: the pydantic models
only need their names), then writes

- `schemas/<Model>.json`: JSON Schemas of the request models the clients fill (chat,
  completion, pooling in both forms, embeddings) and of the response models they read;
- `fixtures/<name>.json`: responses built with vLLM's response models and dumped the way its
  API routers dump them (`model_dump()`): n choices with string, None and integer
  `stop_reason`, `token_ids`, `reasoning`; token_classify pooling rows; float and base64
  embeddings; the error body of a 400; the `/v1/models` list with `max_model_len`;
- `manifest.json`: the version, what was stubbed, and the field names of every model.

The test suite reads these files only (no vLLM installed). Run with a Python that has
pydantic and openai (the project's venv does). When the field lists change from the previous
manifest, the differences are printed for docs/vllm_contract.md.
"""

from __future__ import annotations

import argparse
import base64
import importlib
import importlib.abc
import importlib.machinery
import json
import os
import subprocess
import sys
import tempfile
import types
import zipfile
from pathlib import Path
from typing import Any

__all__ = ["main"]

OUT = Path(__file__).resolve().parents[1] / "tests" / "vllm_contract"

STUBBED = (
    "torch",
    "transformers",
    "triton",
    "msgspec",
    "pybase64",
    "cbor2",
    "zmq",
    "psutil",
    "cloudpickle",
    "vllm._C",
    "vllm.config",
    "vllm.sampling_params",
    "vllm.pooling_params",
    "vllm.renderers",
    "vllm.logprobs",
    "vllm.platforms",
    "vllm.logging_utils",
    "vllm.parser",
    "vllm.tool_parsers",
    "vllm.reasoning",
    "vllm.inputs",
    "vllm.multimodal",
    "vllm.lora",
    "vllm.outputs",
)
"""Modules replaced by stubs whose every attribute is a class accepted as `Any` by pydantic.
Fields typed with them (messages' content parts, structured outputs) have an open schema."""

MODULES = {
    "chat": "vllm.entrypoints.openai.chat_completion.protocol",
    "completion": "vllm.entrypoints.openai.completion.protocol",
    "pooling": "vllm.entrypoints.pooling.pooling.protocol",
    "embed": "vllm.entrypoints.pooling.embed.protocol",
    "engine": "vllm.entrypoints.serve.engine.protocol",
}

REQUESTS = {
    "ChatCompletionRequest": "chat",
    "CompletionRequest": "completion",
    "PoolingCompletionRequest": "pooling",
    "PoolingChatRequest": "pooling",
    "EmbeddingCompletionRequest": "embed",
}
RESPONSES = {
    "ChatCompletionResponse": "chat",
    "CompletionResponse": "completion",
    "PoolingResponse": "pooling",
    "EmbeddingResponse": "embed",
    "ErrorResponse": "engine",
    "ModelList": "engine",
}


class _Stub:
    """What every attribute of a stubbed module is: constructible, subscriptable, `Any`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __class_getitem__(cls, item: Any) -> type:
        return cls

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: Any) -> Any:
        from pydantic_core import core_schema

        return core_schema.any_schema()


class _StubModule(types.ModuleType):
    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        value = type(name, (_Stub,), {"__module__": self.__name__})
        setattr(self, name, value)
        return value


class _Finder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Stubs `STUBBED`, and makes every vLLM package an empty namespace (its `__init__` pulls
    in the engine) while the modules inside load from the unpacked wheel as they are."""

    def __init__(self, src: Path) -> None:
        self.src = src

    def find_spec(self, name: str, path: Any, target: Any = None) -> Any:
        stubbed = any(name == s or name.startswith(s + ".") for s in STUBBED)
        folder = self.src / name.replace(".", "/")
        if stubbed or (name.split(".")[0] == "vllm" and folder.is_dir()):
            spec = importlib.machinery.ModuleSpec(name, self, is_package=True)
            spec.loader_state = None if stubbed else str(folder)
            return spec
        return None

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        module = _StubModule(spec.name)
        module.__path__ = [spec.loader_state] if spec.loader_state else []
        return module

    def exec_module(self, module: types.ModuleType) -> None:
        return None


def fetch_wheel(version: str, into: Path) -> Path:
    """`pip download --no-deps vllm==version` (about 330 MB)."""
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        f"vllm=={version}",
        "-d",
        str(into),
    ]
    subprocess.run(cmd, check=True)
    return next(into.glob("vllm-*.whl"))


def unpack(wheel: Path, into: Path) -> str:
    """The wheel's `vllm/**/*.py` under `into`; returns the wheel's version."""
    with zipfile.ZipFile(wheel) as zf:
        names = [n for n in zf.namelist() if n.startswith("vllm/") and n.endswith(".py")]
        zf.extractall(into, members=names)
    return wheel.name.split("-")[1]


def load_protocol(src: Path) -> dict[str, Any]:
    """The protocol modules, imported from `src` with the heavy modules stubbed."""
    sys.meta_path.insert(0, _Finder(src))
    return {key: importlib.import_module(name) for key, name in MODULES.items()}


def _model(mods: dict[str, Any], name: str, where: str) -> Any:
    return getattr(mods[where], name)


OPTIONAL_RESPONSES = ("ChatCompletionStreamResponse",)
"""Exported when the chat or engine protocol module defines them (added after the 0.32.0
export, which lacks them; tests/test_sc_cancel.py uses the file when it is there)."""


def schemas(mods: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """JSON Schemas: requests as validated (input), responses as sent (serialization)."""
    out = {}
    for name, where in REQUESTS.items():
        out[name] = _model(mods, name, where).model_json_schema(mode="validation")
    for name, where in RESPONSES.items():
        out[name] = _model(mods, name, where).model_json_schema(mode="serialization")
    for name in OPTIONAL_RESPONSES:
        model = getattr(mods["chat"], name, None) or getattr(mods["engine"], name, None)
        if model is not None:
            out[name] = model.model_json_schema(mode="serialization")
    return out


def fixtures(mods: dict[str, Any]) -> dict[str, Any]:
    """Responses built with vLLM's response models, dumped as its routers dump them."""
    return {
        "chat_n4_stop_reasons": _chat(mods).model_dump(),
        "chat_reasoning": _chat_reasoning(mods).model_dump(),
        "pooling_token_classify": _pooling(mods).model_dump(),
        "embeddings_float": _embeddings(mods, base64_=False).model_dump(),
        "embeddings_base64_little": _embeddings(mods, base64_=True).model_dump(),
        "error_400_max_tokens": _error(mods).model_dump(),
        "models": _models(mods).model_dump(),
    }


def _usage(mods: dict[str, Any], prompt: int, completion: int) -> Any:
    usage = mods["engine"].UsageInfo
    return usage(
        prompt_tokens=prompt, completion_tokens=completion, total_tokens=prompt + completion
    )


def _chat(mods: dict[str, Any]) -> Any:
    """n=4: a step (stop string), a generation-config EOS id (151643), the tokenizer's EOS, a
    length cut."""
    chat = mods["chat"]
    ends = [("Step 1: 2+2.\n\n", "stop", "\n\n"), ("So \\boxed{4}", "stop", 151643)]
    ends += [("So \\boxed{4}", "stop", None), ("Step 1: we add", "length", None)]
    choices = [
        chat.ChatCompletionResponseChoice(
            index=i,
            message=chat.ChatMessage(role="assistant", content=text),
            finish_reason=finish,
            stop_reason=stop,
            token_ids=list(range(100, 100 + 3 + i)),
        )
        for i, (text, finish, stop) in enumerate(ends)
    ]
    return chat.ChatCompletionResponse(
        id="chatcmpl-fixture",
        created=0,
        model="Qwen/Qwen2.5-1.5B-Instruct",
        choices=choices,
        usage=_usage(mods, 31, 3 + 4 + 5 + 6),
    )


def _chat_reasoning(mods: dict[str, Any]) -> Any:
    chat = mods["chat"]
    message = chat.ChatMessage(role="assistant", content="\\boxed{4}", reasoning="2+2 is 4.")
    choice = chat.ChatCompletionResponseChoice(index=0, message=message, finish_reason="stop")
    return chat.ChatCompletionResponse(
        id="chatcmpl-fixture2",
        created=0,
        model="Qwen/Qwen3-1.7B",
        choices=[choice],
        usage=_usage(mods, 20, 9),
    )


def _pooling(mods: dict[str, Any]) -> Any:
    """Two candidates: 2 and 1 `<extra_0>` rows of [p_negative, p_positive]."""
    pooling = mods["pooling"]
    rows = [[[0.1, 0.9], [0.3, 0.7]], [[0.6, 0.4]]]
    data = [pooling.PoolingResponseData(index=i, data=r) for i, r in enumerate(rows)]
    return pooling.PoolingResponse(
        id="pool-fixture",
        created=0,
        model="Qwen/Qwen2.5-Math-PRM-7B",
        data=data,
        usage=_usage(mods, 80, 0),
    )


VECTORS = [[0.25, -0.5, 1.0], [0.0, 0.125, -2.0]]


def _embeddings(mods: dict[str, Any], *, base64_: bool) -> Any:
    import numpy as np

    embed = mods["embed"]

    def encode(v: list[float]) -> Any:
        raw = np.asarray(v, dtype="<f4").tobytes()
        return base64.b64encode(raw).decode("ascii") if base64_ else v

    data = [
        embed.EmbeddingResponseData(index=i, embedding=encode(v)) for i, v in enumerate(VECTORS)
    ]
    return embed.EmbeddingResponse(
        id="embd-fixture", created=0, model="BAAI/bge-m3", data=data, usage=_usage(mods, 8, 0)
    )


def _error(mods: dict[str, Any]) -> Any:
    engine = mods["engine"]
    message = (
        "max_tokens=16384 cannot be greater than max_model_len=4096. "
        "Please request fewer output tokens."
    )
    info = engine.ErrorInfo(message=message, type="BadRequestError", param="max_tokens", code=400)
    return engine.ErrorResponse(error=info)


def _models(mods: dict[str, Any]) -> Any:
    engine = mods["engine"]
    card = engine.ModelCard(
        id="Qwen/Qwen2.5-1.5B-Instruct",
        created=0,
        root="Qwen/Qwen2.5-1.5B-Instruct",
        max_model_len=4096,
    )
    card.permission = []
    return engine.ModelList(data=[card])


def fields_of(mods: dict[str, Any]) -> dict[str, list[str]]:
    models = {**REQUESTS, **RESPONSES}
    return {name: sorted(_model(mods, name, where).model_fields) for name, where in models.items()}


def changes(old: dict[str, list[str]], new: dict[str, list[str]]) -> list[str]:
    """Field names added or removed per model between two manifests."""
    lines = []
    for name in sorted(set(old) | set(new)):
        before, after = set(old.get(name, [])), set(new.get(name, []))
        if before != after:
            lines.append(f"{name}: +{sorted(after - before)} -{sorted(before - after)}")
    return lines


def write(out: Path, version: str, mods: dict[str, Any]) -> list[str]:
    """Write schemas, fixtures and the manifest; returns the field changes."""
    manifest_path = out / "manifest.json"
    old = json.loads(manifest_path.read_text())["fields"] if manifest_path.exists() else {}
    for sub, items in (("schemas", schemas(mods)), ("fixtures", fixtures(mods))):
        (out / sub).mkdir(parents=True, exist_ok=True)
        for name, value in items.items():
            text = json.dumps(value, indent=1, sort_keys=True, default=str)
            (out / sub / f"{name}.json").write_text(text + "\n")
    new = fields_of(mods)
    manifest = {
        "vllm_version": version,
        "generated_by": "scripts/vllm_contract.py",
        "stubbed_modules": list(STUBBED),
        "modules": MODULES,
        "fields": new,
    }
    manifest_path.write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    return changes(old, new) if old else []


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--version", default="0.32.0", help="vLLM version to download")
    parser.add_argument("--wheel", type=Path, help="a vLLM wheel already downloaded")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        wheel = args.wheel or fetch_wheel(args.version, Path(tmp))
        src = Path(tmp) / "src"
        version = unpack(wheel, src)
        os.environ.setdefault("VLLM_LOGGING_LEVEL", "ERROR")
        mods = load_protocol(src)
        diff = write(args.out, version, mods)
    print(f"wrote vLLM {version} schemas and fixtures to {args.out}")  # noqa: T201
    for line in diff:
        print("changed:", line)  # noqa: T201
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
