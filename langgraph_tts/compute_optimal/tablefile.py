"""Reading and writing strategy tables (JSON files written by `langgraph-tts calibrate`)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from ..errors import ConfigError
from .table import StrategyTable, parse_table

__all__ = ["load_table", "write_table"]


def load_table(path: str | Path) -> StrategyTable:
    """The table in a JSON file, parsed once per file version (an evaluation reads it once).

    Raises:
        ConfigError: the file is missing or unreadable, not JSON, or not a valid table.
    """
    p = Path(path)
    try:
        stat = p.stat()
    except FileNotFoundError:
        msg = f"strategy table {p} not found (write one with `langgraph-tts calibrate`)"
        raise ConfigError(msg) from None
    except OSError as err:
        raise ConfigError(f"cannot read strategy table {p}: {err.strerror}") from None
    return _parse_file(str(p), stat.st_mtime_ns, stat.st_size)


@lru_cache(maxsize=16)
def _parse_file(path: str, mtime_ns: int, size: int) -> StrategyTable:
    """Cached on (path, mtime, size) so that an edited file is read again."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"cannot read strategy table {path}: {err}") from None
    return parse_table(text, source=path)


def write_table(table: StrategyTable, path: str | Path) -> Path:
    """Write `table` as indented JSON (parent directories are created)."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(table.model_dump_json(indent=2) + "\n", encoding="utf-8")
    return p
