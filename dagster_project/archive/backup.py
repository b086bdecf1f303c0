"""Back up the landing archive: `observatoire backup --to DIR` copies it incrementally, each file
through a temporary name, then verifies the copy."""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

from dagster_project.archive import landing
from dagster_project.archive.verify import (
    RESTORE,
    Finding,
    Report,
    archive_months,
    reload_hint,
    verify,
)
from dagster_project.files import atomic_file


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
    """Copy `src` to `dest` through a temp name in dest's folder (fsync, rename), with its
    modification time (a file restored with `cp -p` from the backup comes back as it was);
    returns the SHA-256 of the bytes written."""
    digest = hashlib.sha256()
    with open(src, "rb") as fin, atomic_file(dest, durable=True) as fout:
        while block := fin.read(1 << 20):
            digest.update(block)
            fout.write(block)
        st = os.fstat(fin.fileno())
    os.utime(dest, ns=(st.st_atime_ns, st.st_mtime_ns))
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
