"""The landing sensor: a month is rebuilt when its set of landing files changes (name, size,
mtime), whatever their times; the cursor keeps one fingerprint per month."""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
from dagster import DagsterInstance, RunRequest, SkipReason, build_sensor_context

from dagster_project.defs import sensors
from dagster_project.defs.sensors import landing_files_sensor, landing_state

A_YEAR_AGO = time.time() - 365 * 86400


@pytest.fixture
def landing(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("OBSERVATOIRE_DATA_DIR", str(tmp_path))
    root = tmp_path / "landing" / "instagram"
    for month in ("2021-06", "2021-07"):
        (root / month).mkdir(parents=True)
        (root / month / "import-1.ndjson").write_text("{}\n")
    return root


@pytest.fixture
def instance():
    with DagsterInstance.ephemeral() as inst:
        yield inst


def tick(instance, cursor):
    """(what the sensor returned, the cursor after the tick)."""
    ctx = build_sensor_context(instance=instance, cursor=cursor)
    result = landing_files_sensor(ctx)
    return result, ctx.cursor


def built(instance) -> str:
    """The cursor of a first tick: the archive as it stands, taken as built."""
    first, cursor = tick(instance, None)
    assert isinstance(first, SkipReason) and "2 landed month(s)" in first.skip_message
    return cursor


def months(result) -> list[str]:
    assert isinstance(result, list) and all(isinstance(r, RunRequest) for r in result), result
    return [r.partition_key for r in result]


def test_a_file_copied_in_with_an_old_time_rebuilds_its_month(landing, instance):
    cursor = built(instance)
    old = landing / "2021-07" / "restored.ndjson"         # cp -p / rsync -a / tar x
    old.write_text('{"a": 1}\n')
    os.utime(old, (A_YEAR_AGO, A_YEAR_AGO))
    asked, after = tick(instance, cursor)
    assert months(asked) == ["2021-07-01"]
    assert asked[0].run_config["resources"]["observatoire"]["config"]["source"] == "landing"
    again, _ = tick(instance, after)
    assert isinstance(again, SkipReason)


def test_a_file_replaced_with_the_same_time_but_another_size_rebuilds(landing, instance):
    f = landing / "2021-06" / "import-1.ndjson"
    os.utime(f, (A_YEAR_AGO, A_YEAR_AGO))
    cursor = built(instance)
    f.write_text('{"replaced": true}\n')
    os.utime(f, (A_YEAR_AGO, A_YEAR_AGO))
    asked, _ = tick(instance, cursor)
    assert months(asked) == ["2021-06-01"]


def test_nothing_changed_skips_and_the_cursor_stays_small(landing, instance):
    cursor = built(instance)
    stored = json.loads(cursor)
    assert set(stored) == {"2021-06-01", "2021-07-01"}
    assert all(isinstance(v, str) and len(v) == 64 for v in stored.values())  # one sha256 each
    for i in range(50):                                   # not the file list
        (landing / "2021-07" / f"more-{i:03}.ndjson").write_text("{}\n")
    assert len(json.dumps(landing_state(landing))) == len(cursor)
    (landing / "2021-07" / "MANIFEST.tsv").write_text("file\n")  # the loader writes it: no run
    result, _ = tick(instance, json.dumps(landing_state(landing)))
    assert isinstance(result, SkipReason) and "no new" in result.skip_message


def test_a_removed_file_rebuilds_and_putting_it_back_rebuilds_again(landing, instance):
    cursor = built(instance)
    extra = landing / "2021-07" / "import-2.ndjson"
    extra.write_text("{}\n")
    added, cursor = tick(instance, cursor)
    assert months(added) == ["2021-07-01"]
    kept = extra.read_bytes(), extra.stat().st_mtime_ns
    extra.unlink()
    removed, cursor = tick(instance, cursor)
    assert months(removed) == ["2021-07-01"]
    time.sleep(0.05)                                      # file times tick coarsely
    extra.write_bytes(kept[0])                            # back as it was when first built
    os.utime(extra, ns=(kept[1], kept[1]))
    back, cursor = tick(instance, cursor)
    assert months(back) == ["2021-07-01"]
    # the same set as the first run, yet not a duplicate of it in Dagster's eyes
    assert back[0].run_key.rsplit("-", 1)[0] == added[0].run_key.rsplit("-", 1)[0]
    assert back[0].run_key != added[0].run_key
    # a month emptied (or an unmounted archive) launches nothing, and keeps its fingerprint
    for f in (landing / "2021-06").iterdir():
        f.unlink()
    gone, after = tick(instance, cursor)
    assert isinstance(gone, SkipReason)
    assert json.loads(after)["2021-06-01"] == json.loads(cursor)["2021-06-01"]


def test_a_file_vanishing_during_the_listing_does_not_fail_the_tick(landing, instance,
                                                                     monkeypatch):
    cursor = built(instance)
    listed = sensors.iter_month_files

    def racy(folder):               # listed, then removed before the sensor's stat()
        return [*listed(folder), Path(folder) / "vanished.ndjson"]

    monkeypatch.setattr(sensors, "iter_month_files", racy)
    result, _ = tick(instance, cursor)
    assert isinstance(result, SkipReason)
    assert landing_state(landing) == json.loads(cursor)


def test_a_cursor_of_the_old_format_launches_nothing_for_unchanged_months(landing, instance):
    new_file = landing / "2021-07" / "import-2.ndjson"
    new_file.write_text("{}\n")
    os.utime(new_file, (A_YEAR_AGO, A_YEAR_AGO))
    old = {f"{folder.name}-01": max(p.stat().st_mtime for p in folder.iterdir())
           for folder in landing.iterdir()}                # month -> newest mtime
    result, after = tick(instance, json.dumps(old))
    assert isinstance(result, SkipReason)
    assert json.loads(after) == landing_state(landing)     # converted in place
    # a month whose newest time grew since the old cursor is rebuilt, as before the upgrade
    old["2021-06-01"] -= 10
    asked, after = tick(instance, json.dumps(old))
    assert months(asked) == ["2021-06-01"]
    assert json.loads(after) == landing_state(landing)


def test_the_sensor_requests_a_new_month_once(landing, instance):
    """A cursor from a tick that saw no landing file (moved from test_orchestration)."""
    (landing / "not-a-month").mkdir()
    assert sorted(landing_state(landing)) == ["2021-06-01", "2021-07-01"]
    requests, cursor = tick(instance, "{}")
    assert months(requests) == ["2021-06-01", "2021-07-01"]
    assert len({r.run_key for r in requests}) == 2
    again, _ = tick(instance, cursor)
    assert isinstance(again, SkipReason)
    os.utime(landing / "2021-07" / "import-1.ndjson", (2e9, 2e9))      # the file changes
    changed, after = tick(instance, cursor)
    assert months(changed) == ["2021-07-01"]
    assert json.loads(after) == landing_state(landing) != json.loads(cursor)
