"""A failing collection night, alerted that night: `collection_failing`.

When most accounts of a night's Graph API run fail (a retired API version, an app that lost
a permission, Meta answering errors all night…), the run itself succeeds: the accounts in
error are simply fetched again by the next run. Without this alert the operator would hear
of it days later, from `collection_short`. `collect_today` calls `alert_failing_night` after
each run: when the run attempted accounts and more than half of them failed (all of them
included), one alert is recorded and delivered, under the key
`collection_failing:<the run's UTC date>`: once a night, a second run the same night adds
nothing.

Attempted: the accounts the run finished (ok, not_found, not_business, error). Accounts a
stop or a budget left for the next run (throttling holds, quota, call or time budget) were
not attempted; not_found and not_business are answers, not failures. A rejected token (code
190) stops the run at once with TokenError: that run fails, and its failure is the alert
(`run_failed`, naming the code), not this one.
"""
from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path

from dagster_project.months import month_key
from dagster_project.service.alerts import Alert, notify

log = logging.getLogger(__name__)

EVENT = "collection_failing"
TEXT_ERROR_MAX = 300      # characters of the commonest error in the alert's one line
DETAIL_ERRORS = 10        # distinct errors listed in the detail


def night_failure(result) -> tuple[int, int, str, int] | None:
    """(failed, attempted, commonest error, its count) when more than half of the accounts
    the run attempted failed, else None. `result` is a `CollectionResult`: its counts and
    `errors` (error → accounts). Ties between errors go to the one seen first."""
    failed = int(result.error)
    attempted = int(result.ok) + int(result.not_found) + int(result.not_business) + failed
    if attempted <= 0 or failed * 2 <= attempted:
        return None
    errors = result.errors
    if not errors:
        return failed, attempted, "unknown error", failed
    error, count = max(errors.items(), key=lambda item: item[1])  # max keeps the first
    return failed, attempted, error, count


def night_key(when: dt.datetime) -> str:
    """The alert's key: one a night (the run's UTC date)."""
    return f"{EVENT}:{when.astimezone(dt.UTC).date().isoformat()}"


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def failing_night_alert(result, failure: tuple[int, int, str, int], *,
                        collection_run: str | None = None) -> Alert:
    """The `collection_failing` alert for a night's run and its `night_failure`."""
    failed, attempted, error, count = failure
    month = month_key(result.month)
    text = (f"Observatoire: the {month} collection failed for {failed} of {attempted} "
            f"accounts tonight; commonest error ({count}×): {_short(error, TEXT_ERROR_MAX)}")
    errors = result.errors
    listed = sorted(errors.items(), key=lambda item: -item[1])[:DETAIL_ERRORS]
    lines = [f"{n}× {e}" for e, n in listed]
    if len(errors) > DETAIL_ERRORS:
        lines.append(f"… and {len(errors) - DETAIL_ERRORS} other error(s)")
    run = f" (collection run {collection_run})" if collection_run else ""
    detail = (f"Tonight's run{run}: {result.ok} ok, {result.not_found} not found, "
              f"{result.not_business} not business, {failed} in error; "
              f"{result.remaining} left for the next run.\n"
              "Errors:\n" + "\n".join(lines) + "\n"
              "Accounts in error are fetched again by the next run of the month. Check what "
              "Meta says: the app's permissions and review status, the Graph API version "
              "(INSTAGRAM_GRAPH_URL), the token (`observatoire status`).")
    return Alert(EVENT, text, month=month, detail=detail)


def alert_failing_night(data_dir: Path, result, when: dt.datetime, *,
                        collection_run: str | None = None) -> bool:
    """Record and deliver the night's `collection_failing` alert when the run failed for
    more than half of its accounts; True if a new alert was recorded. Never raises: an
    alert must not fail the run."""
    try:
        failure = night_failure(result)
        if failure is None:
            return False
        failed, attempted, error, count = failure
        log.warning("collection %s failing: %d of %d accounts failed; commonest error "
                    "(%d×): %s", month_key(result.month), failed, attempted, count, error)
        alert = failing_night_alert(result, failure, collection_run=collection_run)
        return notify(data_dir, night_key(when), alert)
    except Exception as exc:  # noqa: BLE001 — never fail the run for its alert
        log.error("collection_failing alert not sent: %s: %s", type(exc).__name__, exc)
        return False
