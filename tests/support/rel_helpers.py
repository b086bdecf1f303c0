"""Builders for landing lines and small read helpers over a DuckDB warehouse file."""
from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import duckdb

JUNE, JULY, AUGUST = dt.date(2021, 6, 1), dt.date(2021, 7, 1), dt.date(2021, 8, 1)
NOW = dt.datetime(2021, 8, 15, 12, 0, tzinfo=dt.UTC)   # every July/June line is in the past
RAW_TABLES = ("raw.snapshots", "raw.media", "raw.rejected_lines", "raw.load_files")


def media(media_id: str = "m1", timestamp: str = "2021-07-30T09:12:00+0000", *,
          likes: Any = 412, comments: Any = 9) -> dict:
    return {"id": media_id, "timestamp": timestamp, "media_type": "IMAGE",
            "media_product_type": "FEED", "like_count": likes, "comments_count": comments,
            "permalink": f"https://www.instagram.com/p/{media_id}/"}


def snapshot(handle: str = "gersledepartement", fetched_at: str = "2021-07-31T22:00:00Z", *,
             items: list | None = None, source: str = "graph_api", status: str = "ok",
             **account: Any) -> dict:
    """One landing object (docs/landing-format.md); `account` overrides business_discovery fields."""
    bd = {"id": "17841400000000000", "username": handle, "name": "Le Gers",
          "followers_count": 15012, "follows_count": 312, "media_count": 1840,
          "media": {"data": [media()] if items is None else items}}
    bd.update(account)
    return {"handle": handle, "fetched_at": fetched_at, "source": source, "status": status,
            "error": None, "business_discovery": bd}


def dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False)


def without(obj: dict, key: str) -> dict:
    return {k: v for k, v in obj.items() if k != key}


def write(landing: Path, month: str, name: str, lines: list[str] | bytes, *,
          newline: str = "\n", final_newline: bool = True) -> Path:
    """Write a landing file; `lines` are text lines (joined) or raw bytes."""
    path = Path(landing) / month / name
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(lines, bytes):
        path.write_bytes(lines)
    else:
        text = newline.join(lines) + (newline if final_newline and lines else "")
        path.write_bytes(text.encode("utf-8"))
    return path


def query(db: Path, sql: str, params: list | None = None) -> list[tuple]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


def rejected(db: Path) -> list[tuple[str, int, str]]:
    return query(db, "select file, line, reason from raw.rejected_lines order by file, line")


def rejected_raw(db: Path) -> dict[tuple[str, int], str | None]:
    return {(f, n): raw for f, n, raw in query(
        db, "select file, line, raw_line from raw.rejected_lines")}


def loaded(db: Path) -> list[tuple[str, int, str]]:
    return query(db, "select file, line, handle from raw.snapshots order by file, line")


def load_files(db: Path) -> dict[str, tuple]:
    """file → (bytes, lines, loaded, rejected)."""
    return {r[0]: tuple(r[1:]) for r in query(
        db, "select file, bytes, lines, loaded, rejected from raw.load_files")}


def table(db: Path, name: str) -> list[tuple]:
    """Full contents of a table, sorted (for exact comparisons)."""
    return sorted(query(db, f"select * from {name}"), key=repr)


def fingerprint(db: Path) -> dict[str, tuple]:
    """Order-independent digest of every raw table: row count and sum of row hashes."""
    return {t: tuple(query(db, f"select count(*), sum(hash(x)) from {t} x")[0])
            for t in RAW_TABLES}
