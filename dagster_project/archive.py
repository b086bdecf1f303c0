"""Check and back up the landing archive: `observatoire verify` and `observatoire backup`.

The landing files are the only record of the past (the Graph API only returns today's
figures). `verify` checks every file listed in a month's `MANIFEST.tsv` (landing.py) against
its SHA-256 and size, and the warehouse's `raw` tables against the files: for each loaded
file, the lines loaded + rejected equal the lines it holds, and `raw.snapshots` /
`raw.rejected_lines` hold exactly what `raw.load_files` says. `backup` copies the archive
incrementally to another folder with the same layout, each file through a temporary name,
fsync and rename, then verifies the copy against the manifests.
"""
from __future__ import annotations

import hashlib
import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from . import landing
from . import months as m

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

    from .warehouse import connect

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


def verify(landing_dir: Path, warehouse: Path | None = None,
           months: list[str] | None = None) -> Report:
    """Check the archive (every month folder, or `months`) and, with a warehouse, its raw
    tables. Reads only."""
    landing_dir = Path(landing_dir)
    raw_all = _raw_by_file(warehouse, months) if warehouse else None
    if months is None:   # every month folder, and every month loaded (its folder may be gone)
        months = sorted(set(archive_months(landing_dir))
                        | {k.split("/", 1)[0] for k in raw_all or {}})
    report = Report(months=list(months))
    for month in months:
        folder = landing_dir / month
        listed, findings = check_files(folder, month)
        report.files += len(listed)
        on_disk = {p.name for p in landing.iter_month_files(folder)}
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

@dataclass
class BackupResult:
    copied: list[str] = field(default_factory=list)
    skipped: int = 0                                  # already in the backup
    registries: list[str] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)   # not copied, and why
    verify: Report | None = None

    @property
    def ok(self) -> bool:
        return not [f for f in self.findings if f.error] and bool(self.verify and self.verify.ok)


def _copy_atomic(src: Path, dest: Path) -> str:
    """Copy `src` to `dest` through a temp name in dest's folder (fsync, rename); returns
    the SHA-256 of the bytes written."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent)
    digest = hashlib.sha256()
    try:
        os.fchmod(fd, 0o644)
        with open(src, "rb") as fin, os.fdopen(fd, "wb") as fout:
            while block := fin.read(1 << 20):
                digest.update(block)
                fout.write(block)
            fout.flush()
            os.fsync(fout.fileno())
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    landing.fsync_dir(dest.parent)
    return digest.hexdigest()


def _clean_temps(folder: Path) -> None:
    """Temp files left by a backup that was killed half-way (the backup's own)."""
    for p in folder.glob(".*.tmp"):
        if p.is_file():
            p.unlink()


def backup(landing_dir: Path, dest: Path, registries: list[tuple[Path, str]]) -> BackupResult:
    """Copy the landing archive to `dest/landing/instagram/` (only what the backup lacks),
    the manifests, and each registry `(path, name relative to dest)`; then verify the copy.

    A file is copied only if it matches its manifest line (an altered file is not spread
    to the backup: it is named instead). Each copy is written to a temp name, fsynced,
    renamed, and only then listed in the backup's manifest, so a backup killed at any point
    leaves files the next backup either keeps (listed, or matching) or copies again."""
    landing_dir, dest = Path(landing_dir), Path(dest)
    out_root = dest / "landing" / "instagram"
    result = BackupResult()
    for month in archive_months(landing_dir):
        src_dir, dst_dir = landing_dir / month, out_root / month
        listed = landing.read_manifest(src_dir)
        on_disk = {p.name for p in landing.iter_month_files(src_dir)}
        result.findings += [
            Finding(f"{month}/{n}", "not backed up: not in the manifest yet (placed by hand)",
                    reload_hint(month) + " (lists it), then back up again", error=False)
            for n in sorted(on_disk - set(listed))]
        if not listed:
            continue
        dst_dir.mkdir(parents=True, exist_ok=True)
        _clean_temps(dst_dir)
        have = landing.read_manifest(dst_dir)
        for name, entry in sorted(listed.items()):
            src, dst = src_dir / name, dst_dir / name
            if have.get(name) == entry and dst.is_file() and dst.stat().st_size == entry.bytes:
                result.skipped += 1
                continue
            if not src.is_file():
                result.findings.append(Finding(f"{month}/{name}", "not backed up: missing "
                                               "from the archive", RESTORE))
                continue
            if (dst.is_file() and dst.stat().st_size == entry.bytes
                    and landing.sha256_of(dst) == entry.sha256):
                written = entry.sha256          # copied before a kill, not yet listed
                result.skipped += 1
            else:
                written = _copy_atomic(src, dst)
                result.copied.append(f"{month}/{name}")
            if written != entry.sha256:
                dst.unlink()
                result.findings.append(Finding(f"{month}/{name}", "not backed up: the file "
                                               "differs from its manifest line", RESTORE))
                continue
            landing.record(dst_dir, [entry], replace=True)
    for src, rel in registries:
        src, target = Path(src), dest / rel
        if not src.is_file():
            continue
        wanted = landing.sha256_of(src)
        up_to_date = target.is_file() and landing.sha256_of(target) == wanted
        if not up_to_date and _copy_atomic(src, target) != wanted:
            result.findings.append(Finding(rel, "registry changed while it was copied",
                                           "back up again"))
            continue
        result.registries.append(rel)
    result.verify = verify(out_root)
    return result


def registry_files(data_dir: Path, accounts_files: list[Path]) -> list[tuple[Path, str]]:
    """The registries to back up, with their place in the backup: a registry inside the data
    folder keeps its relative path (the demo's `demo/accounts.csv`), others go to
    `registry/<name>`."""
    out: dict[str, Path] = {}
    data_dir = Path(data_dir).resolve()
    demo_registry = data_dir / "demo" / "accounts.csv"
    for path in [demo_registry, *accounts_files]:
        path = Path(path).resolve()
        if not path.is_file():
            continue
        try:
            rel = str(path.relative_to(data_dir))
        except ValueError:
            rel = f"registry/{path.name}"
        out.setdefault(rel, path)
    return [(p, rel) for rel, p in out.items()]


def summary_lines(report: Report) -> list[str]:
    """What `verify` prints (pure)."""
    lines = [str(f) for f in report.errors]
    pending = [f for f in report.notices]
    if pending:
        lines.append(f"{len(pending)} file(s) listed but not an error:")
        lines += [f"  {f}" for f in pending]
    return lines

