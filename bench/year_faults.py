"""The faults `make year` injects, and their accounting.

A fault plan is a JSON list of `{"at": "2027-03-05T09:00", "kind": ..., ...}` (Paris time),
each kind with the alert it must produce (or none):

| kind | parameters | what happens | alert expected |
|---|---|---|---|
| token_expiring | days | debug_token says the token expires in `days` days | token_expiring |
| token_revoked | | the token stops being valid (code 190 everywhere) | token_invalid |
| token_renewed | | a new valid token, given to the observatory as the operator would | none |
| receiver_down | hours | the chat webhook answers 503 for `hours` hours | none (the alerts it missed arrive after) |
| api_down | hours | the Graph API answers 503 for `hours` hours | collection_failing (on a collection night) |

An alert matches a fault when it has the fault's expected event and arrives within
MATCH_WITHIN of the fault's start; a fault is alerted exactly once or it fails the year; an
alert that matches no fault is a false alarm.
"""
from __future__ import annotations

import datetime as dt
import json
import os
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

PARIS = ZoneInfo("Europe/Paris")
EXPECTED = {"token_expiring": "token_expiring", "token_revoked": "token_invalid",
            "token_renewed": None, "receiver_down": None, "api_down": "collection_failing"}
MATCH_WITHIN = dt.timedelta(days=2)
DEFAULT_PLAN = Path(__file__).with_name("year_faults.json")


@dataclass
class Fault:
    at: dt.datetime
    kind: str
    hours: float = 0.0
    days: int = 0
    started: bool = False
    ended: bool = False

    @property
    def expected(self) -> str | None:
        return EXPECTED[self.kind]

    @property
    def until(self) -> dt.datetime:
        return self.at + dt.timedelta(hours=self.hours)

    def describe(self) -> str:
        extra = f" {self.hours:g} h" if self.hours else f" {self.days} d" if self.days else ""
        return f"{self.at.isoformat(timespec='minutes')} {self.kind}{extra}"


def load_plan(path: Path, first: dt.datetime, last: dt.datetime) -> list[Fault]:
    """The plan's faults that fall in [first, last], in time order; an unknown kind or a
    malformed entry is a clear error."""
    faults = []
    for i, entry in enumerate(json.loads(path.read_text(encoding="utf-8"))):
        kind = entry.get("kind")
        if kind not in EXPECTED:
            raise ValueError(f"{path}: fault {i}: unknown kind {kind!r} "
                             f"(known: {', '.join(sorted(EXPECTED))})")
        at = dt.datetime.fromisoformat(entry["at"]).replace(tzinfo=PARIS)
        fault = Fault(at, kind, float(entry.get("hours", 0)), int(entry.get("days", 0)))
        if first <= at <= last:
            faults.append(fault)
    return sorted(faults, key=lambda f: f.at)


class Injector:
    """Starts and ends each fault when the simulated clock reaches it."""

    def __init__(self, faults: list[Fault], api, receiver):
        self.faults, self.api, self.receiver = faults, api, receiver
        self.renewals = 0
        self.api_down = False

    def apply(self, now: dt.datetime) -> None:
        for f in self.faults:
            if not f.started and now >= f.at:
                f.started = True
                self.start(f, now)
            if f.started and not f.ended and f.hours and now >= f.until:
                f.ended = True
                self.end(f)

    def start(self, f: Fault, now: dt.datetime) -> None:
        print(f"  {now.astimezone(PARIS).isoformat(timespec='minutes')}  FAULT {f.kind}",
              flush=True)
        if f.kind == "token_expiring":
            self.api.token_expires_at = int((now + dt.timedelta(days=f.days)).timestamp())
        elif f.kind == "token_revoked":
            self.api.token = f"EAArevoked-{self.api.token}"     # the one in use is refused
        elif f.kind == "token_renewed":
            self.renewals += 1
            self.api.token = f"EAArenewed{self.renewals}-0123456789abcdef"
            self.api.token_expires_at = 0
            os.environ["INSTAGRAM_ACCESS_TOKEN"] = self.api.token   # the operator's edit
        elif f.kind == "receiver_down":
            self.receiver.down = True
        elif f.kind == "api_down":
            self.api_down = True

    def end(self, f: Fault) -> None:
        if f.kind == "receiver_down":
            self.receiver.down = False
        elif f.kind == "api_down":
            self.api_down = False


def account(faults: list[Fault], alerts: list[tuple[str, dict]]) -> dict:
    """Each fault with the alerts that answered it; the false alarms; the verdict's parts."""
    matched: dict[int, list[dict]] = {i: [] for i in range(len(faults))}
    false_alarms = []
    for at, body in alerts:
        when = dt.datetime.fromisoformat(at)
        candidates = [i for i, f in enumerate(faults) if f.expected == body.get("event")
                      and f.at <= when <= f.at + MATCH_WITHIN]
        if candidates:
            matched[candidates[-1]].append({"at": at, "event": body.get("event")})
        else:
            false_alarms.append({"at": at, "event": body.get("event"),
                                 "text": str(body.get("text", ""))[:200]})
    rows = [{"fault": f.describe(), "expected": f.expected, "alerts": matched[i],
             "ok": len(matched[i]) == (1 if f.expected else 0)} for i, f in enumerate(faults)]
    return {"faults": rows, "false_alarms": false_alarms,
            "faults_alerted_once": sum(1 for r in rows if r["expected"] and r["ok"]),
            "faults_expecting_an_alert": sum(1 for r in rows if r["expected"]),
            "duplicates": sum(max(0, len(r["alerts"]) - 1) for r in rows)}
