"""French formatting and spreadsheet guards shared by the CSVs, the report, the charts and
the site (pure).

Two number forms: `fmt_decimal` / `fmt_int` for CSV cells (no thousands separator, the
dialect's decimal separator: a spreadsheet parses them), `fr_number` / `fr_int` / `fr_pct`
/ `signed` for reading (narrow no-break space between thousands, decimal comma, the minus
sign −, "—" for a missing value)."""
from __future__ import annotations

import datetime as dt
from typing import Any

FR_MONTHS = ["janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août",
             "septembre", "octobre", "novembre", "décembre"]
FR_MONTHS_SHORT = ["janv.", "févr.", "mars", "avr.", "mai", "juin", "juil.", "août",
                   "sept.", "oct.", "nov.", "déc."]
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
STABLE = "stable"   # évolution of an unchanged rank: a word, no formula guard needed


def month_label_fr(month: dt.date) -> str:
    """date(2021, 7, 1) → 'juillet 2021'."""
    return f"{FR_MONTHS[month.month - 1]} {month.year}"


def first_of_month(month: dt.date | dt.datetime | str) -> dt.date:
    if isinstance(month, str):
        month = dt.date.fromisoformat(month + "-01" if len(month) == 7 else month)
    if isinstance(month, dt.datetime):
        month = month.date()
    return month.replace(day=1)


def neutralise(text: str | None) -> str:
    """Guard a text cell against spreadsheet formula injection (prefix `'`)."""
    if text is None:
        return ""
    text = str(text)
    return "'" + text if text.startswith(FORMULA_PREFIXES) else text


def evolution(rank_change: int | None, is_new_entry: bool | None) -> str:
    """How a journalist reads a movement: '▲ 3', '▼ 2', 'stable', 'nouveau'."""
    if is_new_entry:
        return "nouveau"
    if rank_change is None:
        return ""
    if rank_change > 0:
        return f"▲ {rank_change}"
    if rank_change < 0:
        return f"▼ {-rank_change}"
    return STABLE


def fmt_decimal(value: float | None, decimals: int, decimal_sep: str = ".",
                scale: float = 1.0) -> str:
    """Fixed decimals, no thousands separator; '' for null; never '-0.00'."""
    if value is None:
        return ""
    text = f"{value * scale:.{decimals}f}"
    if text.startswith("-") and float(text) == 0:
        text = text[1:]
    return text.replace(".", decimal_sep)


def fmt_int(value: int | None) -> str:
    return "" if value is None else str(int(value))


def territory_code(territory_id: str, code: str | None) -> str:
    return code or territory_id.split(":", 1)[-1]


def utc(ts: Any) -> dt.datetime | None:
    if ts is None:
        return None
    if ts.tzinfo is None:
        return ts.replace(tzinfo=dt.UTC)
    return ts.astimezone(dt.UTC)


def fmt_ts(ts: dt.datetime | None) -> str:
    return ts.strftime("%d/%m/%Y %H:%M UTC") if ts else "—"


def fr_number(value: float | None, decimals: int = 2) -> str:
    if value is None:
        return "—"
    text = f"{value:,.{decimals}f}".replace(",", "\u202f").replace(".", ",")
    return text[1:] if text.startswith("-") and float(value) == 0 else text.replace("-", "−")


def fr_int(value: int | None) -> str:
    return "—" if value is None else f"{int(value):,}".replace(",", "\u202f")


def fr_pct(value: float | None) -> str:
    return "—" if value is None else fr_number(value * 100, 2) + "\u00a0%"


def signed(value: int | None) -> str:
    if value is None:
        return "—"
    return ("+" if value > 0 else "") + fr_int(value).replace("-", "−")
