"""Summaries, tables and plots of evaluation directories.

`summarize_rows` groups rows by (dataset, strategy, budget, settings fingerprint) and gives,
per group: accuracy as the mean ± standard deviation over seeds with a 95 % interval (a
bootstrap over problems), coverage (some finished
solution was correct), accuracy per level and subject where the dataset has them, mean
samples, tokens (cached prompt tokens included when the server reports them), FLOPs, wall time
and request latency percentiles. `plot` draws the DORA paper's Fig. 3 layout (accuracy vs
budget per strategy, one panel per dataset) and accuracy vs completion tokens and vs FLOPs.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .store import STORE_NAME, ResultStore

__all__ = [
    "format_markdown",
    "format_table",
    "load_dirs",
    "plot",
    "summarize_rows",
    "summarize_store",
]

_GROUP_BY = ("level", "subject")


def _wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    if n == 0:
        return (0.0, 0.0)
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


def accuracy_stats(
    by_seed: dict[int, list[bool]], by_problem: dict[str, list[bool]] | None = None
) -> dict[str, Any]:
    """Mean and spread (standard deviation) of the accuracy over seeds, and a 95 % interval.

    The interval is a percentile bootstrap over problems (each problem's accuracy averaged
    over its seeds; 2,000 resamples, fixed RNG): the problems are the main source of
    uncertainty of a benchmark score, which a spread over seeds alone does not show. Without
    `by_problem`, the Wilson interval over all rows.
    """
    per_seed = {s: (sum(v) / len(v) if v else 0.0) for s, v in sorted(by_seed.items())}
    values = list(per_seed.values())
    mean = float(np.mean(values)) if values else 0.0
    std = float(np.std(values, ddof=1)) if len(values) >= 2 else 0.0
    if by_problem:
        low, high = _bootstrap([sum(v) / len(v) for v in by_problem.values() if v])
    else:
        flat = [x for v in by_seed.values() for x in v]
        low, high = _wilson(sum(flat), len(flat))
    return {
        "accuracy": mean,
        "accuracy_std": std,
        "accuracy_ci95": [min(low, mean), max(high, mean)],
        "accuracy_per_seed": {str(s): a for s, a in per_seed.items()},
    }


def _bootstrap(values: list[float], resamples: int = 2000) -> tuple[float, float]:
    if not values:
        return (0.0, 0.0)
    arr = np.asarray(values, dtype=float)
    rng = np.random.default_rng(0)
    means = arr[rng.integers(0, len(arr), size=(resamples, len(arr)))].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return (float(low), float(high))


def _percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {"p50": 0.0, "p90": 0.0, "p99": 0.0}
    arr = np.asarray(values, dtype=float)
    p50, p90, p99 = np.percentile(arr, [50, 90, 99])
    return {"p50": float(p50), "p90": float(p90), "p99": float(p99)}


def _summarize_group(rows: list[dict[str, Any]]) -> dict[str, Any]:
    ok = [r for r in rows if not r.get("error")]
    n = len(ok)
    by_seed: dict[int, list[bool]] = defaultdict(list)
    by_problem: dict[str, list[bool]] = defaultdict(list)
    for r in ok:
        by_seed[int(r.get("seed", 0))].append(bool(r.get("correct")))
        by_problem[str(r.get("id"))].append(bool(r.get("correct")))

    def mean_ledger(key: str) -> float:
        return sum(float((r.get("ledger") or {}).get(key, 0)) for r in ok) / n if n else 0.0

    def mean_of(key: str) -> float:
        return sum(float(r.get(key) or 0) for r in ok) / n if n else 0.0

    out: dict[str, Any] = {
        **accuracy_stats(by_seed, by_problem),
        "coverage": (sum(1 for r in ok if r.get("coverage", r.get("correct"))) / n) if n else 0.0,
        "n": n,
        "problems": len({r.get("id") for r in ok}),
        "seeds": sorted(by_seed),
        "errors": len(rows) - n,
        "mean_samples": mean_ledger("samples"),
        "mean_prompt_tokens": mean_ledger("prompt_tokens"),
        "mean_cached_prompt_tokens": mean_of("cached_prompt_tokens"),
        "mean_completion_tokens": mean_ledger("completion_tokens"),
        "mean_prm_tokens": mean_ledger("prm_tokens"),
        "mean_flops": mean_ledger("flops"),
        "mean_policy_requests": mean_ledger("policy_requests"),
        "mean_prm_requests": mean_ledger("prm_requests"),
        "mean_embed_requests": mean_ledger("embed_requests"),
        "mean_wall_s": mean_of("wall_s"),
        "latency_ms": _percentiles([x for r in ok for x in r.get("latency_ms") or []]),
    }
    for field in _GROUP_BY:
        values: dict[str, list[bool]] = defaultdict(list)
        for r in ok:
            if r.get(field) not in (None, ""):
                values[str(r[field])].append(bool(r.get("correct")))
        if values:
            out[f"accuracy_by_{field}"] = {
                k: {"accuracy": sum(v) / len(v), "n": len(v)}
                for k, v in sorted(values.items(), key=lambda kv: _natural(kv[0]))
            }
    return out


def _natural(text: str) -> tuple[int, float, str]:
    try:
        return (0, float(text), "")
    except ValueError:
        return (1, 0.0, text)


def summarize_rows(
    rows: Iterable[dict[str, Any]], settings: dict[str, dict[str, Any]] | None = None
) -> dict[str, Any]:
    """Summary of rows: one group per (dataset, strategy, budget, fingerprint)."""
    groups: dict[tuple[str, str, int, str], list[dict[str, Any]]] = defaultdict(list)
    count = 0
    for r in rows:
        count += 1
        key = (
            str(r.get("dataset")),
            str(r.get("strategy")),
            int(r.get("budget") or 0),
            str(r.get("fingerprint", "")),
        )
        groups[key].append(r)
    fingerprints = sorted({k[3] for k in groups})
    out_groups = []
    for (dataset, strategy, budget, fp), members in sorted(groups.items()):
        summary = _summarize_group(members)
        out_groups.append(
            {"dataset": dataset, "strategy": strategy, "budget": budget, "fingerprint": fp}
            | summary
        )
    return {
        "groups": out_groups,
        "rows": count,
        "fingerprints": fingerprints,
        "settings": {fp: (settings or {}).get(fp, {}) for fp in fingerprints},
    }


def summarize_store(store: ResultStore) -> dict[str, Any]:
    return summarize_rows(store.rows(), store.settings())


def load_dirs(dirs: Sequence[Path]) -> dict[str, Any]:
    """The summary of the rows of every directory together (each must hold a store)."""
    from .errors import ConfigError

    rows: dict[tuple[Any, ...], dict[str, Any]] = {}
    settings: dict[str, dict[str, Any]] = {}
    for d in dirs:
        if not (d / STORE_NAME).exists():
            raise ConfigError(f"{d} holds no {STORE_NAME}; run `langgraph-tts eval --out {d}`")
        with ResultStore(d) as store:
            for r in store.rows():  # a cell in two directories counts once
                key = tuple(r.get(k) for k in ("dataset", "id", "strategy", "budget", "seed"))
                rows.setdefault((*key, r.get("fingerprint")), r)
            settings.update(store.settings())
    return summarize_rows(rows.values(), settings)


# --- text ------------------------------------------------------------------------------------

_COLUMNS = (
    ("dataset", "dataset"),
    ("strategy", "strategy"),
    ("N", "budget"),
    ("seeds", "seeds"),
    ("n", "n"),
    ("accuracy ± sd", "acc"),
    ("95% CI", "ci"),
    ("coverage", "coverage"),
    ("samples", "mean_samples"),
    ("compl. tok", "mean_completion_tokens"),
    ("prompt tok (cached)", "prompt"),
    ("TFLOPs", "flops"),
    ("wall s", "mean_wall_s"),
    ("lat p50/p90/p99 ms", "latency"),
    ("err", "errors"),
)


def _cells(group: dict[str, Any], label_fp: bool) -> list[str]:
    lat = group["latency_ms"]
    values = {
        "dataset": group["dataset"],
        "strategy": group["strategy"] + (f" [{group['fingerprint'][:6]}]" if label_fp else ""),
        "budget": str(group["budget"]),
        "seeds": str(len(group["seeds"])),
        "n": str(group["n"]),
        "acc": f"{group['accuracy']:.3f} ± {group['accuracy_std']:.3f}",
        "ci": f"[{group['accuracy_ci95'][0]:.3f}, {group['accuracy_ci95'][1]:.3f}]",
        "coverage": f"{group['coverage']:.3f}",
        "mean_samples": f"{group['mean_samples']:.1f}",
        "mean_completion_tokens": f"{group['mean_completion_tokens']:.0f}",
        "prompt": f"{group['mean_prompt_tokens']:.0f} ({group['mean_cached_prompt_tokens']:.0f})",
        "flops": f"{group['mean_flops'] / 1e12:.2f}",
        "mean_wall_s": f"{group['mean_wall_s']:.2f}",
        "latency": f"{lat['p50']:.0f}/{lat['p90']:.0f}/{lat['p99']:.0f}",
        "errors": str(group["errors"]),
    }
    return [values[key] for _, key in _COLUMNS]


def format_table(summary: dict[str, Any]) -> str:
    """A plain-text table of the groups, one line each."""
    label_fp = len(summary["fingerprints"]) > 1
    header = [name for name, _ in _COLUMNS]
    body = [_cells(g, label_fp) for g in summary["groups"]]
    widths = [max(len(x) for x in col) for col in zip(header, *body, strict=False)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in body]
    lines += _level_lines(summary)
    if label_fp:
        lines += _settings_lines(summary)
    return "\n".join(line.rstrip() for line in lines)


def _level_lines(summary: dict[str, Any]) -> list[str]:
    lines = []
    for g in summary["groups"]:
        for field in _GROUP_BY:
            per = g.get(f"accuracy_by_{field}")
            if per and len(per) > 1:
                parts = ", ".join(f"{k}: {v['accuracy']:.2f} (n={v['n']})" for k, v in per.items())
                lines.append(f"{g['dataset']} {g['strategy']} N={g['budget']} by {field}: {parts}")
    return ["", *lines] if lines else []


def _settings_lines(summary: dict[str, Any]) -> list[str]:
    """How the fingerprints differ (the settings that changed)."""
    settings = summary["settings"]
    keys = sorted({k for s in settings.values() for k in s})
    differ = [k for k in keys if len({repr(s.get(k)) for s in settings.values()}) > 1]
    lines = ["", "settings that differ between fingerprints:"]
    for fp, s in settings.items():
        lines.append(f"  [{fp[:6]}] " + ", ".join(f"{k}={s.get(k)!r}" for k in differ))
    return lines


def format_markdown(summary: dict[str, Any]) -> str:
    """The same table in GitHub markdown."""
    label_fp = len(summary["fingerprints"]) > 1
    header = [name for name, _ in _COLUMNS]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    for g in summary["groups"]:
        lines.append("| " + " | ".join(_cells(g, label_fp)) + " |")
    return "\n".join(lines)


# --- plots -----------------------------------------------------------------------------------


def plot(summary: dict[str, Any], path: Path) -> Path:
    """Accuracy vs budget (one panel per dataset, a line per strategy with its 95 % interval),
    and accuracy vs mean completion tokens and vs mean FLOPs; written to `path` (PNG)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.ticker import EngFormatter, LogLocator, NullFormatter
    except ImportError as err:  # pragma: no cover - depends on the extra
        from .errors import ConfigError

        raise ConfigError("--plot needs matplotlib: pip install 'langgraph-tts[plot]'") from err
    groups = summary["groups"]
    label_fp = len(summary["fingerprints"]) > 1
    datasets = sorted({g["dataset"] for g in groups})
    series: dict[tuple[str, str], dict[str, list[dict[str, Any]]]] = defaultdict(
        lambda: defaultdict(list)
    )
    for g in groups:
        name = g["strategy"] + (f" [{g['fingerprint'][:6]}]" if label_fp else "")
        series[(g["dataset"], name)]["points"].append(g)
    names = sorted({name for _, name in series})
    colours = {n: f"C{i % 10}" for i, n in enumerate(names)}
    cols = len(datasets)
    fig, axes = plt.subplots(3, cols, figsize=(4.2 * cols + 0.6, 10.5), squeeze=False)
    xs = (
        ("budget", "rollout budget N", True),
        ("mean_completion_tokens", "completion tokens per problem", True),
        ("mean_flops", "FLOPs per problem", True),
    )
    for j, dataset in enumerate(datasets):
        for i, (key, label, logx) in enumerate(xs):
            ax = axes[i][j]
            for name in names:
                points = sorted(
                    series.get((dataset, name), {}).get("points", []), key=lambda g: g["budget"]
                )
                if not points:
                    continue
                x = [float(p[key]) for p in points]
                y = [p["accuracy"] * 100 for p in points]
                low = [p["accuracy_ci95"][0] * 100 for p in points]
                high = [p["accuracy_ci95"][1] * 100 for p in points]
                ax.plot(x, y, marker="o", color=colours[name], label=name)
                ax.fill_between(x, low, high, color=colours[name], alpha=0.1, linewidth=0)
            if logx:
                ax.set_xscale("log", base=2 if key == "budget" else 10)
                if key != "budget":
                    ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
                    ax.xaxis.set_major_formatter(EngFormatter(sep=""))
                ax.xaxis.set_minor_formatter(NullFormatter())
            if key == "budget":
                budgets = sorted({g["budget"] for g in groups if g["dataset"] == dataset})
                ax.set_xticks(budgets, [str(b) for b in budgets])
                ax.set_title(dataset)
            ax.set_xlabel(label)
            ax.set_ylabel("accuracy (%)")
            ax.grid(True, alpha=0.3)
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(
        handles,
        labels,
        loc="upper center",
        bbox_to_anchor=(0.5, 0.975),
        ncol=min(len(names), 6),
        frameon=False,
    )
    seeds = sorted({len(g["seeds"]) for g in groups})
    fig.suptitle(
        f"accuracy (mean over {'/'.join(map(str, seeds))} seeds, 95% interval shaded)",
        y=0.995,
        fontsize=10,
    )
    fig.tight_layout(rect=(0, 0, 1, 0.94))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
