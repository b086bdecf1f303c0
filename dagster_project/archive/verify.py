"""Check the landing archive and the warehouse against it: `observatoire verify`.

The landing files are the only record of the past (the Graph API only returns today's
figures). `verify` checks every file listed in a month's `MANIFEST.tsv` (landing.py) against
its SHA-256 and size, and the warehouse's `raw` tables against the files: for each loaded
file, the lines loaded + rejected equal the lines it holds, and `raw.snapshots` /
`raw.rejected_lines` hold exactly what `raw.load_files` says (`backup.py` copies the
archive and verifies the copy with the same checks).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from dagster_project import months as m
from dagster_project.archive import landing

MONTH_RE = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")
RESTORE = "restore it from a backup (observatoire backup --to DIR makes one), then verify again"


def reload_hint(month: str) -> str:
    return f"reload the month: observatoire run --source landing --from {month} --to {month}"


@dataclass(frozen=True)
class Finding:
    file: str          # "YYYY-MM/name" (relative to the landing root)
    problem: str
    todo: str = ""
    error: bool = True

    def __str__(self) -> str:
        return f"{self.file}: {self.problem}" + (f" → {self.todo}" if self.todo else "")


@dataclass
class Report:
    months: list[str] = field(default_factory=list)
    files: int = 0                 # files listed in the manifests
    loaded: int = 0                # of which checked against raw
    findings: list[Finding] = field(default_factory=list)

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.error]

    @property
    def notices(self) -> list[Finding]:
        return [f for f in self.findings if not f.error]

    @property
    def ok(self) -> bool:
        return not self.errors


def archive_months(landing_dir: Path) -> list[str]:
    """The month folders of the archive ("YYYY-MM"), sorted."""
    root = Path(landing_dir)
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if p.is_dir() and MONTH_RE.match(p.name))


# ----------------------------------------------------------------------------- verify

def check_files(folder: Path, month: str) -> tuple[dict[str, landing.Entry], list[Finding]]:
    """Every file of one month folder against its manifest (pure reading)."""
    findings: list[Finding] = []
    manifest_path = folder / landing.MANIFEST
    listed: dict[str, landing.Entry] = {}
    if manifest_path.is_file():
        rows = manifest_path.read_text(encoding="utf-8").splitlines()
        if not rows or rows[0].split("\t") != list(landing.MANIFEST_COLUMNS):
            findings.append(Finding(f"{month}/{landing.MANIFEST}", "the header line is not "
                                    + "\\t".join(landing.MANIFEST_COLUMNS), RESTORE))
        for number, raw in enumerate(rows[1:], start=2):
            entry = landing.parse_manifest_line(raw)
            if entry is None:
                findings.append(Finding(f"{month}/{landing.MANIFEST}",
                                        f"line {number} cannot be read: {raw[:80]!r}", RESTORE))
            else:
                listed[entry.file] = entry
    for name, entry in sorted(listed.items()):
        path = folder / name
        rel = f"{month}/{name}"
        if not path.is_file():
            findings.append(Finding(rel, "missing (listed in the manifest, not on disk)", RESTORE))
            continue
        size = path.stat().st_size
        if size != entry.bytes:
            findings.append(Finding(rel, f"altered: {size} bytes instead of {entry.bytes} "
                                    f"({'truncated' if size < entry.bytes else 'grown'})", RESTORE))
        elif landing.sha256_of(path) != entry.sha256:
            findings.append(Finding(rel, "altered: its SHA-256 differs from the manifest's "
                                    "(same size: changed bytes)", RESTORE))
    return listed, findings


def _raw_by_file(warehouse: Path, months: list[str] | None) -> dict[str, dict]:
    """file → what raw holds about it, for `months` or all (empty without a warehouse)."""
    import duckdb

    from dagster_project.warehouse import connect

    if not Path(warehouse).is_file():
        return {}
    firsts = None if months is None else [m.parse_month(x) for x in months]
    try:
        with connect(warehouse, read_only=True) as con:
            tables = {r[0] for r in con.execute(
                "select table_name from information_schema.tables where table_schema = 'raw'"
            ).fetchall()}
            if "load_files" not in tables:
                return {}
            rows = con.execute("""
                select f.file, f.bytes, f.lines, f.loaded, f.rejected,
                       coalesce(s.n, 0), coalesce(r.n, 0)
                from raw.load_files f
                left join (select file, count(*) n from raw.snapshots
                           where ($1 is null or month = any($1)) group by file) s using (file)
                left join (select file, count(*) n from raw.rejected_lines
                           where ($1 is null or month = any($1)) group by file) r using (file)
                where ($1 is null or f.month = any($1))
                union all      -- rows of files raw.load_files does not know
                select file, null, null, null, null, count(*), 0 from raw.snapshots
                where ($1 is null or month = any($1)) and file not in (
                    select file from raw.load_files where ($1 is null or month = any($1)))
                group by file
            """, [firsts]).fetchall()
    except duckdb.IOException as exc:
        raise RuntimeError(f"cannot read the warehouse {warehouse} (a run is writing it?): "
                           f"{exc}") from None
    return {r[0]: dict(zip(("bytes", "lines", "loaded", "rejected", "snapshots",
                            "rejected_rows"), r[1:])) for r in rows}


def check_raw(month: str, names_on_disk: set[str], listed: dict[str, landing.Entry],
              raw: dict[str, dict]) -> tuple[int, list[Finding]]:
    """The warehouse's raw rows of one month against its files (pure)."""
    findings: list[Finding] = []
    checked = 0
    prefix = f"{month}/"
    in_raw = {k[len(prefix):]: v for k, v in raw.items() if k.startswith(prefix)}
    for name in sorted(set(listed) | names_on_disk | set(in_raw)):
        rel, entry, got = prefix + name, listed.get(name), in_raw.get(name)
        if got is None:
            if name in names_on_disk:
                findings.append(Finding(rel, "not loaded yet", reload_hint(month), error=False))
            continue
        if name not in names_on_disk and entry is None:
            findings.append(Finding(rel, "in the warehouse's raw tables, but the file is gone "
                                    "and not in the manifest", RESTORE))
            continue
        if entry is None:
            findings.append(Finding(rel, "loaded, but not in the manifest (its line was "
                                    "removed?)", "check the file against a backup; if it is "
                                    "genuine, " + reload_hint(month) + " (lists it again)"))
            continue
        checked += 1
        problems = []
        if got["bytes"] is not None and got["bytes"] != entry.bytes:
            problems.append(f"loaded from {got['bytes']} bytes, the manifest lists {entry.bytes}")
        if got["loaded"] is None:
            problems.append(f"raw.snapshots has {got['snapshots']} rows from it but "
                            "raw.load_files has no line for it")
        else:
            if entry.lines is not None and got["loaded"] + got["rejected"] != entry.lines:
                problems.append(f"lines loaded {got['loaded']} + rejected {got['rejected']} "
                                f"≠ {entry.lines} lines in the file")
            if got["snapshots"] != got["loaded"]:
                problems.append(f"raw.snapshots holds {got['snapshots']} rows, "
                                f"{got['loaded']} were loaded")
            if got["rejected_rows"] != got["rejected"]:
                problems.append(f"raw.rejected_lines holds {got['rejected_rows']} rows, "
                                f"{got['rejected']} were rejected")
        if problems:
            findings.append(Finding(rel, "warehouse drift: " + "; ".join(problems),
                                    reload_hint(month)))
    return checked, findings


def written_by_collection(data_dir: Path, month: str) -> dict[str, str]:
    """The landing files the Graph API collection says it wrote in `month` (its run log's
    `finished` lines): file name → "run <id> at <time>"."""
    from dagster_project.collect.window import read_run_log

    out: dict[str, str] = {}
    for line in read_run_log(data_dir, m.parse_month(month)):
        if line.get("event") == "finished":
            for name in line.get("files") or []:
                out.setdefault(str(name), f"run {str(line.get('run_id', ''))[:8]} at "
                                          f"{line.get('at', '?')}")
    return out


def check_written(month: str, written: dict[str, str], on_disk: set[str],
                  listed: dict[str, landing.Entry]) -> list[Finding]:
    """Files the collection wrote that are neither on disk nor in the manifest (pure): lost
    with their manifest line, as when a month folder is put back from a copy older than
    them; nothing else would notice (the manifest and the warehouse agree again)."""
    return [Finding(f"{month}/{name}", f"written by the collection ({how}) but neither on "
                    "disk nor in the manifest (the folder restored from an older copy?)",
                    RESTORE) for name, how in sorted(written.items())
            if name not in on_disk and name not in listed]


def _run_log_months(data_dir: Path | None) -> set[str]:
    folder = Path(data_dir) / "collection" if data_dir else None
    if folder is None or not folder.is_dir():
        return set()
    return {p.stem for p in folder.glob("*.jsonl") if MONTH_RE.match(p.stem)}


def verify(landing_dir: Path, warehouse: Path | None = None,
           months: list[str] | None = None, data_dir: Path | None = None) -> Report:
    """Check the archive (every month folder, or `months`), with a warehouse its raw tables,
    and with the data folder the files the collection's run logs say it wrote. Reads only."""
    landing_dir = Path(landing_dir)
    raw_all = _raw_by_file(warehouse, months) if warehouse else None
    if months is None:   # every month folder, every month loaded or collected (folder gone?)
        months = sorted(set(archive_months(landing_dir))
                        | {k.split("/", 1)[0] for k in raw_all or {}}
                        | _run_log_months(data_dir))
    report = Report(months=list(months))
    for month in months:
        folder = landing_dir / month
        listed, findings = check_files(folder, month)
        report.files += len(listed)
        on_disk = {p.name for p in landing.iter_month_files(folder)}
        if data_dir is not None:
            findings += check_written(month, written_by_collection(data_dir, month), on_disk,
                                      listed)
        if raw_all is None:
            findings += [Finding(f"{month}/{n}", "not in the manifest yet (placed by hand: "
                                 "listed when first loaded)", reload_hint(month), error=False)
                         for n in sorted(on_disk - set(listed))]
        else:
            checked, raw_findings = check_raw(month, on_disk, listed, raw_all)
            report.loaded += checked
            findings += raw_findings
        report.findings += findings
    return report


# ----------------------------------------------------------------------------- backup


def summary_lines(report: Report) -> list[str]:
    """What `verify` prints (pure)."""
    lines = [str(f) for f in report.errors]
    pending = [f for f in report.notices]
    if pending:
        lines.append(f"{len(pending)} file(s) listed but not an error:")
        lines += [f"  {f}" for f in pending]
    return lines

