"""Evaluation runner: many problems concurrently, one JSONL row per problem, resumable.

Rows are appended and flushed as problems finish, so a crash or Ctrl-C loses at most the
problems in flight; running the same command again skips the problems already answered
(rows with an error are retried).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, is_dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic_core import to_jsonable_python

from .errors import ConfigError, ServerUnavailableError
from .grading import Grader, default_grader
from .ledger import merge_ledgers
from .upgrades import legacy_settings

__all__ = [
    "DATASETS",
    "EvalRow",
    "load_dataset",
    "read_results",
    "run_eval",
    "summarize",
]

logger = logging.getLogger(__name__)

DATASETS = {
    "math500": "math500.jsonl",
    "aime24": "aime24.jsonl",
    "aime25": "aime25.jsonl",
    "amc23": "amc23.jsonl",
    "gsm8k": "gsm8k_test.jsonl",
}
"""Built-in datasets shipped in the package (origins and licences: langgraph_tts/data/README.md)."""

EvalRow = dict[str, Any]
Solver = Callable[[str], Awaitable[dict[str, Any]]]
"""Async function: problem text -> graph output (`answer`, `result`, `ledger`)."""


SIM_DATASET_SIZE = 200
"""Problems in a `sim:<scenario>` dataset when no limit is given."""


def _simulated(spec: str, limit: int | None) -> list[dict[str, str]]:
    """`sim:<scenario>[:<seed>]`: the simulator's own problems (serve with the same scenario)."""
    from .sim.world import make_problems

    _, _, rest = spec.partition(":")
    scenario, _, seed = rest.partition(":")
    scenarios = ("default", "popular_worse", "easy", "hard")
    if scenario not in scenarios:
        raise ConfigError(f"unknown simulated scenario {scenario!r}; known: {', '.join(scenarios)}")
    if seed and not seed.isdigit():
        raise ConfigError(f"the seed in {spec!r} must be a non-negative integer")
    problems = make_problems(limit or SIM_DATASET_SIZE, scenario=scenario, seed=int(seed or 0))
    return [{"id": p.id, "problem": p.text, "answer": p.answer} for p in problems]


_LONG_FIELDS = frozenset({"solution", "unique_id"})


def _scalar(value: Any) -> bool:
    return isinstance(value, str | int | float | bool) and len(str(value)) <= 200


def load_dataset(name_or_path: str, *, limit: int | None = None) -> list[dict[str, str]]:
    """Problems of a built-in dataset, of the simulator (`sim:<scenario>[:<seed>]`, to be run
    against `langgraph-tts sim-server --scenario <scenario> --seed <seed>`), or of any JSONL
    file with `problem` and `answer` fields. Other short fields of a record (`level`,
    `subject`, ...) are kept as strings, for `--where` filters and per-level summaries."""
    if name_or_path.startswith("sim:"):
        return _simulated(name_or_path, limit)
    if name_or_path in DATASETS:
        data = (resources.files("langgraph_tts") / "data" / DATASETS[name_or_path]).read_bytes()
        source = name_or_path
    else:
        path = Path(name_or_path)
        if not path.is_file():
            known = ", ".join(DATASETS)
            msg = f"unknown dataset {name_or_path!r}: not a built-in name ({known}) nor a file"
            raise ConfigError(msg)
        data = path.read_bytes()
        source = str(path)
    rows: list[dict[str, str]] = []
    first_line: dict[str, int] = {}
    for lineno, raw in enumerate(data.splitlines(), 1):
        line = _decode(raw, source, lineno)
        if not line.strip():
            continue
        row = _row(line, source, lineno)
        if row["id"] in first_line:
            msg = f"{source}:{lineno}: duplicate id {row['id']!r} (first on line {first_line[row['id']]})"
            raise ConfigError(msg)
        first_line[row["id"]] = lineno
        rows.append(row)
        if limit is not None and len(rows) >= limit:
            break
    if not rows:
        raise ConfigError(f"dataset {source} has no problems")
    return rows


def _decode(raw: bytes, source: str, lineno: int) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as err:
        byte = raw[err.start : err.start + 1]
        msg = (
            f"{source}:{lineno}: not UTF-8 text (byte {byte!r} at offset {err.start}: "
            f"{err.reason}); convert it to UTF-8"
        )
        raise ConfigError(msg) from None


def _row(line: str, source: str, lineno: int) -> dict[str, str]:
    """One dataset record: `id`, `problem`, `answer`, and short scalar fields as strings."""
    try:
        record = json.loads(line)
    except json.JSONDecodeError as err:
        raise ConfigError(f"{source}:{lineno}: not valid JSON ({err.msg})") from None
    if not isinstance(record, dict) or "problem" not in record or "answer" not in record:
        raise ConfigError(f"{source}:{lineno}: a record needs 'problem' and 'answer' fields")
    row = {
        "id": str(record.get("id", f"{Path(source).stem}-{lineno}")),
        "problem": str(record["problem"]),
        "answer": str(record["answer"]),
    }
    for field in ("problem", "answer"):
        if not row[field].strip():
            raise ConfigError(f"{source}:{lineno}: empty {field!r}")
    for key, value in record.items():  # level, subject, ...: for --where and summaries
        if key not in row and key not in _LONG_FIELDS and _scalar(value):
            row[key] = str(value)
    return row


def read_results(path: Path) -> dict[str, EvalRow]:
    """Last row per problem id of a results.jsonl (torn last lines from a crash are skipped)."""
    out: dict[str, EvalRow] = {}
    if not path.exists():
        return out
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(row, dict) and "id" in row:
            out[str(row["id"])] = row
    return out


def _end_torn_line(path: Path) -> None:
    """A crash can leave a last line without its newline; end it so new rows start clean."""
    if path.exists() and path.stat().st_size:
        with path.open("rb+") as fh:
            fh.seek(-1, 2)
            if fh.read(1) != b"\n":
                fh.write(b"\n")


_ENDPOINT_SETTINGS = frozenset(
    {"base_url", "prm_url", "embed_url", "system1_base_url", "system2_base_url"}
    | {"api_key", "max_concurrency", "max_retries", "request_timeout"}
)


def _guard_settings(out_dir: Path, settings: dict[str, Any], *, has_rows: bool) -> None:
    """Refuse to resume rows written under other settings (`run.json` remembers them), so a
    directory never mixes runs; endpoints may change between runs, and a setting the earlier
    run did not know (added by an upgrade) may appear where it changes nothing
    (`upgrades.ADDED_SETTINGS`)."""
    kept = {k: v for k, v in settings.items() if k not in _ENDPOINT_SETTINGS}
    path = out_dir / "run.json"
    if has_rows and path.exists():
        before = json.loads(path.read_text(encoding="utf-8")).get("settings", {})
        unknown_then = (kept.keys() - before.keys()) & legacy_settings(kept)
        changed = sorted(
            k
            for k in kept.keys() | before.keys()
            if kept.get(k) != before.get(k) and k not in unknown_then
        )
        if changed:
            diff = ", ".join(f"{k}: {before.get(k)!r} -> {kept.get(k)!r}" for k in changed[:4])
            msg = (
                f"{out_dir} holds results of other settings ({diff}); use another directory "
                "or start over (--no-resume)"
            )
            raise ConfigError(msg)
    tmp = path.with_name("run.json.tmp")
    tmp.write_text(json.dumps({"settings": kept}, indent=2) + "\n", encoding="utf-8")
    tmp.replace(path)


def summarize(rows: list[EvalRow], *, settings: dict[str, Any]) -> dict[str, Any]:
    """Accuracy and mean spend per problem over the rows without errors."""
    ok = [r for r in rows if not r.get("error")]
    n = len(ok)
    total: dict[str, Any] = {}
    for r in ok:
        total = merge_ledgers(total, r.get("ledger") or {})  # type: ignore[arg-type,assignment]

    def mean(key: str) -> float:
        return float(total.get(key, 0)) / n if n else 0.0

    return {
        "accuracy": (sum(1 for r in ok if r.get("correct")) / n) if n else 0.0,
        "n": n,
        "errors": len(rows) - n,
        "strategy": settings.get("strategy"),
        "budget": settings.get("budget"),
        "dataset": settings.get("dataset"),
        "mean_completion_tokens": mean("completion_tokens"),
        "mean_prompt_tokens": mean("prompt_tokens"),
        "mean_samples": mean("samples"),
        "mean_policy_requests": mean("policy_requests"),
        "mean_prm_requests": mean("prm_requests"),
        "mean_embed_requests": mean("embed_requests"),
        "mean_flops": mean("flops"),
        "mean_wall_s": (sum(float(r.get("wall_s", 0.0)) for r in ok) / n) if n else 0.0,
        "settings": settings,
    }


async def run_eval(
    solve: Solver,
    problems: list[dict[str, str]],
    out_dir: Path,
    *,
    settings: Any,
    dataset: str | None = None,
    concurrency: int = 32,
    resume: bool = True,
    grader: Grader | None = None,
    on_row: Callable[[EvalRow], None] | None = None,
) -> dict[str, Any]:
    """Solve and grade `problems`, appending to `out_dir/results.jsonl`; write `summary.json`.

    An unreachable server aborts the run (every further problem would fail the same way);
    any other per-problem failure is recorded in that problem's row.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    results_path = out_dir / "results.jsonl"
    if not resume and results_path.exists():
        results_path.unlink()
    done = {k: v for k, v in read_results(results_path).items() if not v.get("error")}
    todo = [p for p in problems if p["id"] not in done]
    grader = grader or default_grader()
    limit = asyncio.Semaphore(concurrency)
    settings_dict = (
        asdict(settings)
        if is_dataclass(settings) and not isinstance(settings, type)
        else dict(settings)
    )
    settings_dict.pop("api_key", None)
    settings_dict = to_jsonable_python(settings_dict)  # e.g. a strategy table object
    _guard_settings(out_dir, {**settings_dict, "dataset": dataset}, has_rows=bool(done))
    _end_torn_line(results_path)
    with results_path.open("a", encoding="utf-8") as sink:

        async def one(item: dict[str, str]) -> EvalRow:
            async with limit:
                started = time.perf_counter()
                row: EvalRow = {"id": item["id"], "answer": item["answer"]}
                try:
                    out = await solve(item["problem"])
                    pred = out.get("answer")
                    row.update(
                        prediction=pred,
                        correct=bool(
                            pred is not None and await grader.aequivalent(item["answer"], pred)
                        ),
                        ledger=out.get("ledger", {}),
                        result={
                            k: v for k, v in (out.get("result") or {}).items() if k != "groups"
                        },
                        error=None,
                    )
                except ServerUnavailableError:
                    raise
                except Exception as err:  # recorded per problem, the run goes on
                    logger.warning("problem %s failed: %s", item["id"], err)
                    row.update(
                        prediction=None,
                        correct=False,
                        ledger={},
                        error=f"{type(err).__name__}: {err}",
                    )
                row["wall_s"] = round(time.perf_counter() - started, 4)
                sink.write(json.dumps(row, ensure_ascii=False) + "\n")
                sink.flush()
                if on_row is not None:
                    on_row(row)
                return row

        try:
            async with asyncio.TaskGroup() as group:
                for item in todo:
                    group.create_task(one(item))
        except* ServerUnavailableError as errors:
            raise errors.exceptions[0] from None
    final = read_results(results_path)
    rows = [final[p["id"]] for p in problems if p["id"] in final]
    summary = summarize(rows, settings={**settings_dict, "dataset": dataset})
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return summary
