"""The results store of an evaluation directory: one SQLite row per finished cell.

A cell is (dataset, problem, strategy, budget, seed, settings fingerprint). SQLite gives what
a sweep that runs for hours needs without hand-written locking: each row is committed in its
own transaction (write-ahead log), so a process killed at any moment (SIGKILL included)
leaves either the whole row or nothing; several processes (Ray workers on one machine) can
write to the same file; and the primary key makes every write idempotent.

Rows whose problem failed (`error` set) are stored too, and replaced when the cell is run
again, so a directory always holds at most one row per cell.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NamedTuple

from .errors import ConfigError

__all__ = ["STORE_NAME", "CellKey", "ResultStore"]

STORE_NAME = "results.sqlite"
SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS settings (
    fingerprint TEXT PRIMARY KEY,
    settings TEXT NOT NULL,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS cells (
    dataset TEXT NOT NULL,
    problem_id TEXT NOT NULL,
    strategy TEXT NOT NULL,
    budget INTEGER NOT NULL,
    seed INTEGER NOT NULL,
    fingerprint TEXT NOT NULL,
    problem_digest TEXT NOT NULL,
    correct INTEGER NOT NULL,
    error TEXT,
    row TEXT NOT NULL,
    finished REAL NOT NULL,
    PRIMARY KEY (dataset, problem_id, strategy, budget, seed, fingerprint)
);
"""


class CellKey(NamedTuple):
    """The identity of one cell of a sweep."""

    dataset: str
    problem_id: str
    strategy: str
    budget: int
    seed: int
    fingerprint: str


class ResultStore:
    """`DIR/results.sqlite`: finished cells, the settings behind each fingerprint.

    Example:
        ```python
        store = ResultStore(Path("runs/x"))
        if key not in store.finished_keys():
            store.put(key, row, problem_digest="…")
        ```
    """

    def __init__(self, directory: Path, *, timeout_s: float = 60.0) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        self.path = directory / STORE_NAME
        if not self.path.exists() and (directory / "results.jsonl").exists():
            msg = (
                f"{directory} holds results.jsonl of an older version but no {STORE_NAME}; "
                "use a new --out directory (its rows cannot be told apart by settings)"
            )
            raise ConfigError(msg)
        self._db = sqlite3.connect(self.path, timeout=timeout_s, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(f"PRAGMA busy_timeout={int(timeout_s * 1000)}")
        with self._transaction():
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    self._db.execute(statement)
            found = self._db.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
            if found is None:
                self._db.execute(
                    "INSERT INTO meta(key, value) VALUES ('schema', ?)", (str(SCHEMA_VERSION),)
                )
            elif int(found[0]) != SCHEMA_VERSION:
                msg = f"{self.path} has schema {found[0]}, this version reads {SCHEMA_VERSION}"
                raise ConfigError(msg)

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> ResultStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- settings ----------------------------------------------------------------------------

    def register_settings(self, fingerprint: str, settings: dict[str, Any]) -> None:
        """Remember the settings behind `fingerprint` (idempotent)."""
        with self._transaction():
            self._db.execute(
                "INSERT OR IGNORE INTO settings(fingerprint, settings, created) VALUES (?, ?, ?)",
                (fingerprint, json.dumps(settings, sort_keys=True), time.time()),
            )

    def settings(self) -> dict[str, dict[str, Any]]:
        """Fingerprint -> settings of every configuration that ever ran here."""
        rows = self._db.execute("SELECT fingerprint, settings FROM settings ORDER BY created")
        return {fp: json.loads(text) for fp, text in rows}

    # --- cells -------------------------------------------------------------------------------

    def put(self, key: CellKey, row: dict[str, Any], *, problem_digest: str) -> None:
        """Write one finished cell in one transaction; a finished row is never overwritten
        by a failed one, and a failed one is replaced by the next attempt."""
        error = row.get("error")
        with self._transaction():
            if error:  # replaces an earlier failure, never a finished row
                self._db.execute(
                    "INSERT INTO cells VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                    "ON CONFLICT DO UPDATE SET problem_digest = excluded.problem_digest, "
                    "error = excluded.error, row = excluded.row, finished = excluded.finished "
                    "WHERE cells.error IS NOT NULL",
                    (*key, problem_digest, 0, str(error), json.dumps(row), time.time()),
                )
                return
            self._db.execute(
                "INSERT OR REPLACE INTO cells VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    *key,
                    problem_digest,
                    int(bool(row.get("correct"))),
                    None,
                    json.dumps(row, ensure_ascii=False),
                    time.time(),
                ),
            )

    def finished_keys(self, *, correct_only: bool = False) -> set[CellKey]:
        """Cells with a row and no error (the ones a rerun skips)."""
        cur = self._db.execute(
            "SELECT dataset, problem_id, strategy, budget, seed, fingerprint FROM cells "
            "WHERE error IS NULL" + (" AND correct = 1" if correct_only else "")
        )
        return {CellKey(*r) for r in cur}

    def digests(self, dataset: str) -> dict[str, str]:
        """Problem id -> digest of the problem text and answer the stored rows were run on."""
        cur = self._db.execute(
            "SELECT DISTINCT problem_id, problem_digest FROM cells WHERE dataset = ?", (dataset,)
        )
        return dict(cur.fetchall())

    def rows(self, *, include_errors: bool = True) -> list[dict[str, Any]]:
        """Every stored row (as JSON objects), in a stable order."""
        sql = "SELECT row FROM cells"
        if not include_errors:
            sql += " WHERE error IS NULL"
        sql += " ORDER BY dataset, strategy, budget, seed, fingerprint, problem_id"
        return [json.loads(text) for (text,) in self._db.execute(sql)]

    def count(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM cells").fetchone()[0])

    def export_jsonl(self, path: Path, rows: Iterable[dict[str, Any]] | None = None) -> None:
        """Write the rows to `path` atomically (a temporary file renamed over it)."""
        tmp = path.with_name(path.name + ".tmp")
        with tmp.open("w", encoding="utf-8") as fh:
            for row in self.rows() if rows is None else rows:
                fh.write(json.dumps(row, ensure_ascii=False) + "\n")
        tmp.replace(path)
