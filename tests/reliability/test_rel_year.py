"""`make year` in small: the observatory's own schedules, sensors and jobs over a simulated
March 2027 (installed on 20 February), through the spring daylight-saving change (28 March:
the 02:00 collection of that day runs at 03:00, as the daemon runs it) to the publication of
March on 1 April at 06:00 Paris, against the Graph API stand-in, with alerts to a webhook."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest
from pipeline_support import ROOT, project_env

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def year(tmp_path_factory) -> dict:
    tmp = tmp_path_factory.mktemp("year")
    out, log = tmp / "year.json", tmp / "year.log"
    with open(log, "w") as sink:
        proc = subprocess.Popen(
            [sys.executable, "-m", "bench.year", "--from", "2027-03", "--months", "1",
             "--out", str(out)], cwd=ROOT, env=project_env(tmp / "unused"),
            stdout=sink, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            code = proc.wait(timeout=600)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)
    text = log.read_text()
    assert code == 0, text[-4000:]
    return json.loads(out.read_text())


def test_the_month_is_collected_and_published_on_time(year):
    [march] = year["months"]
    assert march["month"] == "2027-03" and march["accounts_collected"] == 60
    assert march["published_at"] == "2027-04-01T06:00+02:00" and march["on_time"]
    assert march["provisional_builds"] >= 1          # the landing sensor built it in its window
    assert year["failed_runs"] == 0 and year["runs_in_progress"] == []
    assert year["alerts"] == []                      # nothing went wrong: nothing alerted


def test_the_collection_runs_every_day_of_the_window_across_the_clock_change(year):
    days = [x["at"] for x in year["launches"]
            if x["origin"] == "schedule:graph_api_collection" and x["partition"] == "2027-03-01"]
    assert days == ["2027-03-25T02:00+01:00", "2027-03-26T02:00+01:00",
                    "2027-03-27T02:00+01:00", "2027-03-28T03:00+02:00",
                    "2027-03-29T02:00+02:00", "2027-03-30T02:00+02:00",
                    "2027-03-31T02:00+02:00"]
    # February, the month before the calendar, was published on 1 March too
    published = [x for x in year["launches"] if x["origin"] == "schedule:monthly_publication"]
    assert [(x["at"], x["partition"], x["status"]) for x in published] == [
        ("2027-03-01T06:00+01:00", "2027-02-01", "success"),
        ("2027-04-01T06:00+02:00", "2027-03-01", "success")]
