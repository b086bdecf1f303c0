"""Month arithmetic: the monthly partition is the unit of everything."""
from __future__ import annotations

import datetime as dt
import re

FIRST_MONTH = dt.date(2017, 10, 1)
_MONTH_RE = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")


def parse_month(text: str) -> dt.date:
    """'2021-07' → date(2021, 7, 1); anything else raises ValueError naming the input."""
    m = _MONTH_RE.match(text or "")
    if not m:
        raise ValueError(f"invalid month {text!r}: expected YYYY-MM, e.g. 2021-07")
    return dt.date(int(m.group(1)), int(m.group(2)), 1)


def month_key(month: dt.date) -> str:
    return f"{month.year:04d}-{month.month:02d}"


def add_months(month: dt.date, n: int) -> dt.date:
    idx = month.year * 12 + month.month - 1 + n
    return dt.date(idx // 12, idx % 12 + 1, 1)


def month_range(start: dt.date, end: dt.date) -> list[dt.date]:
    """Inclusive list of first-of-month dates from start to end."""
    out, cur = [], start.replace(day=1)
    while cur <= end:
        out.append(cur)
        cur = add_months(cur, 1)
    return out


def today_utc() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


def current_month(today: dt.date | None = None) -> dt.date:
    return (today or today_utc()).replace(day=1)


def last_complete_month(today: dt.date | None = None) -> dt.date:
    return add_months(current_month(today), -1)


def is_provisional(month: dt.date, today: dt.date | None = None) -> bool:
    """A month's rankings are provisional until the month is over."""
    return month >= current_month(today)


def require_current_month(months: list[dt.date], today: dt.date | None = None) -> dt.date:
    """The Graph API only returns today's figures, so it collects into the current month
    only: the one check of that rule (CLI, collect asset, collector). Returns the current
    month when `months` is exactly it; raises ValueError naming both otherwise."""
    current = current_month(today)
    asked = sorted({mo.replace(day=1) for mo in months})
    if asked != [current]:
        shown = " → ".join(month_key(mo) for mo in (asked[:1] + asked[1:][-1:])) or "no month"
        raise ValueError(
            f"the Graph API only returns today's figures: it can only collect the current "
            f"month ({month_key(current)}), not {shown}")
    return current
