import datetime as dt

import pytest

from dagster_project import months as m
from dagster_project.cli.run import resolve_range


def test_parse_and_arithmetic():
    assert m.parse_month("2021-07") == dt.date(2021, 7, 1)
    assert m.add_months(dt.date(2021, 12, 1), 1) == dt.date(2022, 1, 1)
    assert m.add_months(dt.date(2021, 1, 1), -1) == dt.date(2020, 12, 1)
    assert len(m.month_range(dt.date(2017, 10, 1), dt.date(2018, 9, 1))) == 12
    for bad in ["2021-7", "2021-13", "21-07", "2021-07-01", "", "2021-07'; drop"]:
        with pytest.raises(ValueError, match="expected YYYY-MM"):
            m.parse_month(bad)


def test_provisional_and_last_complete_month():
    today = dt.date(2026, 11, 28)
    assert m.last_complete_month(today) == dt.date(2026, 10, 1)
    assert m.is_provisional(dt.date(2026, 11, 1), today)
    assert not m.is_provisional(dt.date(2026, 10, 1), today)


def test_resolve_range_defaults_and_errors():
    today = dt.date(2026, 11, 28)
    assert resolve_range("demo", None, None, today) == (dt.date(2017, 10, 1), dt.date(2026, 10, 1))
    assert resolve_range("demo", "2021-06", "2021-08", today) == (dt.date(2021, 6, 1), dt.date(2021, 8, 1))
    assert resolve_range("graph_api", None, None, today) == (dt.date(2026, 11, 1), dt.date(2026, 11, 1))
    with pytest.raises(ValueError, match="only returns today's figures"):
        resolve_range("graph_api", "2021-07", None, today)
    with pytest.raises(ValueError, match="starts in 2017-10"):
        resolve_range("demo", "2017-09", "2018-01", today)
    with pytest.raises(ValueError, match="in the future"):
        resolve_range("demo", "2026-01", "2027-01", today)
    with pytest.raises(ValueError, match="is after"):
        resolve_range("demo", "2021-08", "2021-06", today)
