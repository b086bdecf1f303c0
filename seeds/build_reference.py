"""Build the reference seeds of the Observatoire from @etalab/decoupage-administratif.

Re-runnable and deterministic: running it twice gives byte-identical CSV files.

    python seeds/build_reference.py            # (or: make seeds)

What it does
  1. `npm pack @etalab/decoupage-administratif@6.0.0` in a temporary directory (npm registry
     only; the tarball's sha512 integrity is pinned below) and reads
     package/data/{regions,departements,communes,epci}.json straight from the tarball;
  2. keeps metropolitan France + DROM (zone "metro"/"drom"; the COM are dropped);
  3. writes regions.csv, departements.csv, epci.csv, communes.csv, categories.csv and
     scoring_weights.csv next to this file (UTF-8, no BOM, ",", "\\n", header, sorted by code);
  4. checks the expected COG 2026 counts and exits non-zero with a clear message otherwise;
  5. verifies the hand-curated instagram_accounts.csv (never written by this script):
     every territory_id must exist in the reference just built.

Standard library only.
"""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
import tarfile
import tempfile
from collections import Counter
from pathlib import Path

PACKAGE = "@etalab/decoupage-administratif"
VERSION = "6.0.0"  # = INSEE Code officiel géographique 2026
INTEGRITY = (
    "sha512-XavYsFlbcM/prKr8hNHPKER94IHw/dsxNM4nxjWMYk6PLFACpEedvn/7wK8Baozm0dCYhWWcf+7bcWpA5pmCaQ=="
)
SCOPE = ("metro", "drom")

SEEDS_DIR = Path(__file__).resolve().parent
ACCOUNTS_FILE = SEEDS_DIR / "instagram_accounts.csv"
ACCOUNTS_COLUMNS = ["handle", "territory_id", "source_url", "checked_on", "name"]

# Expected counts for package 6.0.0 (COG 2026), metro + DROM.
EXPECTED = {
    "regions": 18,
    "departements": 101,
    "epci": 1255,
    "epci_by_type": {"CC": 989, "CA": 230, "CU": 14, "METRO": 21, "MET69": 1},
    "communes": 34875,
    "communes_100k_plus": 42,  # population >= 100 000
    "communes_20k_100k": 442,  # 20 000 <= population < 100 000
    "communes_no_population": 6,  # population missing or 0
    "communes_without_epci": 4,  # island communes: Bréhat, Sein, Ouessant, Yeu
}

CATEGORIES = [
    ("region", "Régions", 50, 1),
    ("departement", "Départements", 50, 2),
    ("metropole", "Métropoles", 50, 3),
    ("communaute_agglomeration", "Communautés d'agglomération et urbaines", 50, 4),
    ("communaute_communes", "Communautés de communes", 50, 5),
    ("grande_ville", "Grandes villes", 20, 6),
    ("ville_moyenne", "Villes moyennes", 50, 7),
    ("petite_ville", "Petites villes", 50, 8),
]

SCORING_WEIGHTS = [
    ("engagement_rate", 5, "Interactions (likes + comments) per post relative to followers"),
    ("reach", 4, "Audience reached by the account's posts over the month"),
    ("posts_per_day", 3, "Publishing frequency: posts per day over the month"),
    ("followers", 2, "Number of followers of the account"),
    ("follower_ratio", 1, "Followers relative to the territory's population"),
]


class BuildError(SystemExit):
    """A failed check: message on stderr, exit status 1."""

    def __init__(self, message: str) -> None:
        super().__init__(f"build_reference.py: ERROR: {message}")


def check(condition: bool, message: str) -> None:
    if not condition:
        raise BuildError(message)


# --------------------------------------------------------------------------- fetch


def fetch_package_data(names: list[str]) -> dict[str, list[dict]]:
    """npm pack the pinned package in a temp dir and load package/data/<name>.json."""
    spec = f"{PACKAGE}@{VERSION}"
    with tempfile.TemporaryDirectory(prefix="decoupage-") as tmp:
        try:
            proc = subprocess.run(
                ["npm", "pack", spec, "--json", "--pack-destination", tmp],
                cwd=tmp, capture_output=True, text=True, check=False,
                env={**os.environ, "npm_config_update_notifier": "false"},
            )
        except FileNotFoundError as exc:
            raise BuildError("npm not found on PATH (needed to download the package)") from exc
        check(proc.returncode == 0,
              f"`npm pack {spec}` failed (exit {proc.returncode}):\n{proc.stderr.strip()}")
        try:
            info = json.loads(proc.stdout)[0]
        except (ValueError, IndexError, KeyError) as exc:
            raise BuildError(f"unexpected `npm pack --json` output: {proc.stdout[:500]!r}") from exc
        check(info.get("integrity") == INTEGRITY,
              f"tarball integrity {info.get('integrity')!r} != pinned {INTEGRITY!r}")
        tarball = Path(tmp) / info["filename"]
        check(tarball.is_file(), f"npm pack reported {tarball.name} but it is not in {tmp}")
        data = {}
        with tarfile.open(tarball, "r:gz") as tar:
            for name in names:
                member = f"package/data/{name}.json"
                try:
                    fh = tar.extractfile(member)
                except KeyError as exc:
                    raise BuildError(f"{member} missing from {tarball.name}") from exc
                check(fh is not None, f"{member} is not a regular file")
                data[name] = json.load(fh)
    return data


# --------------------------------------------------------------------------- build


def build_tables(raw: dict[str, list[dict]]) -> dict[str, tuple[list[str], list[list]]]:
    regions = sorted((r for r in raw["regions"] if r["zone"] in SCOPE), key=lambda r: r["code"])
    region_codes = {r["code"] for r in regions}

    departements = sorted(
        (d for d in raw["departements"] if d["zone"] in SCOPE), key=lambda d: d["code"]
    )
    dep_codes = {d["code"] for d in departements}
    for d in departements:
        check(d["region"] in region_codes,
              f"département {d['code']} points to unknown région {d['region']}")

    communes = sorted(
        (c for c in raw["communes"] if c["type"] == "commune-actuelle" and c["zone"] in SCOPE),
        key=lambda c: c["code"],
    )
    commune_codes = {c["code"] for c in communes}

    epcis = sorted(raw["epci"], key=lambda e: e["code"])
    epci_of: dict[str, str] = {}
    for e in epcis:
        for m in e["membres"]:
            check(m["code"] in commune_codes,
                  f"EPCI {e['code']} ({e['nom']}) lists {m['code']}, not a current metro/DROM commune")
            check(m["code"] not in epci_of,
                  f"commune {m['code']} belongs to two EPCI: {epci_of.get(m['code'])} and {e['code']}")
            epci_of[m["code"]] = e["code"]

    for c in communes:
        check(c["departement"] in dep_codes,
              f"commune {c['code']} points to unknown département {c['departement']}")
        check(c["region"] in region_codes,
              f"commune {c['code']} points to unknown région {c['region']}")
        pop = c.get("population")
        check(pop is None or (isinstance(pop, int) and pop >= 0),
              f"commune {c['code']}: bad population {pop!r}")

    for e in epcis:
        check(isinstance(e["populationMunicipale"], int),
              f"EPCI {e['code']}: bad populationMunicipale {e['populationMunicipale']!r}")

    return {
        "regions": (["code", "name"], [[r["code"], r["nom"]] for r in regions]),
        "departements": (
            ["code", "name", "code_region"],
            [[d["code"], d["nom"], d["region"]] for d in departements],
        ),
        "epci": (
            ["siren", "name", "type", "population"],
            [[e["code"], e["nom"], e["type"], e["populationMunicipale"]] for e in epcis],
        ),
        "communes": (
            ["code", "name", "code_departement", "code_region", "zone", "population",
             "epci_siren"],
            [[c["code"], c["nom"], c["departement"], c["region"], c["zone"],
              "" if c.get("population") is None else c["population"],
              epci_of.get(c["code"], "")] for c in communes],
        ),
        "categories": (["category", "label", "top_n", "sort_order"],
                       [list(row) for row in CATEGORIES]),
        "scoring_weights": (["kpi", "weight", "description"],
                            [list(row) for row in SCORING_WEIGHTS]),
    }


def check_counts(tables: dict[str, tuple[list[str], list[list]]]) -> dict[str, object]:
    regions = tables["regions"][1]
    departements = tables["departements"][1]
    epcis = tables["epci"][1]
    communes = tables["communes"][1]
    pops = [row[5] for row in communes]
    stats: dict[str, object] = {
        "regions": len(regions),
        "departements": len(departements),
        "epci": len(epcis),
        "epci_by_type": dict(Counter(row[2] for row in epcis)),
        "communes": len(communes),
        "communes_100k_plus": sum(1 for p in pops if p != "" and p >= 100_000),
        "communes_20k_100k": sum(1 for p in pops if p != "" and 20_000 <= p < 100_000),
        "communes_no_population": sum(1 for p in pops if p in ("", 0)),
        "communes_without_epci": sum(1 for row in communes if not row[6]),
    }
    for key, expected in EXPECTED.items():
        check(stats[key] == expected,
              f"count mismatch for {key}: got {stats[key]}, expected {expected} "
              f"({PACKAGE}@{VERSION}, metro + DROM)")
    for name, (_, rows) in tables.items():
        keys = [row[0] for row in rows]
        check(len(keys) == len(set(keys)), f"{name}: duplicate codes")
    return stats


# --------------------------------------------------------------------------- write


def render_csv(header: list[str], rows: list[list]) -> bytes:
    buf = io.StringIO(newline="")
    writer = csv.writer(buf, delimiter=",", lineterminator="\n", quoting=csv.QUOTE_MINIMAL)
    writer.writerow(header)
    writer.writerows(rows)
    return buf.getvalue().encode("utf-8")


def write_if_changed(path: Path, content: bytes) -> bool:
    """Atomically replace path with content; return True if the bytes changed."""
    if path.exists() and path.read_bytes() == content:
        return False
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(content)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return True


# --------------------------------------------------------------------------- accounts


def verify_accounts(tables: dict[str, tuple[list[str], list[list]]]) -> int:
    """Check the hand-curated registry against the reference; never writes it."""
    check(ACCOUNTS_FILE.is_file(),
          f"{ACCOUNTS_FILE} is missing: it is hand-curated and is not generated by this script")
    names = {f"departement:{row[0]}": row[1] for row in tables["departements"][1]}
    names.update({f"epci:{row[0]}": row[1] for row in tables["epci"][1]})
    names.update({f"region:{row[0]}": row[1] for row in tables["regions"][1]})
    names.update({f"commune:{row[0]}": row[1] for row in tables["communes"][1]})

    with ACCOUNTS_FILE.open(encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh)
        check(reader.fieldnames == ACCOUNTS_COLUMNS,
              f"{ACCOUNTS_FILE.name}: header {reader.fieldnames} != {ACCOUNTS_COLUMNS}")
        rows = list(reader)
    errors = []
    seen_handles: set[str] = set()
    seen_territories: set[str] = set()
    for line, row in enumerate(rows, start=2):
        where = f"{ACCOUNTS_FILE.name} line {line} (@{row['handle']})"
        tid = row["territory_id"]
        if tid not in names:
            errors.append(f"{where}: territory_id {tid!r} not found in the reference")
        elif row["name"] != names[tid]:
            errors.append(f"{where}: name {row['name']!r} != COG name {names[tid]!r} for {tid}")
        if row["source_url"] != f"https://www.instagram.com/{row['handle']}/":
            errors.append(f"{where}: source_url {row['source_url']!r} does not match the handle")
        if row["handle"] in seen_handles:
            errors.append(f"{where}: duplicate handle")
        if tid in seen_territories:
            errors.append(f"{where}: territory {tid} already has an account")
        seen_handles.add(row["handle"])
        seen_territories.add(tid)
    check(not errors, "instagram_accounts.csv does not match the reference:\n  " + "\n  ".join(errors))
    return len(rows)


# --------------------------------------------------------------------------- main


def main() -> int:
    raw = fetch_package_data(["regions", "departements", "communes", "epci"])
    tables = build_tables(raw)
    stats = check_counts(tables)

    print(f"Reference built from {PACKAGE}@{VERSION} (COG 2026), metro + DROM:")
    for name, (header, rows) in tables.items():
        path = SEEDS_DIR / f"{name}.csv"
        changed = write_if_changed(path, render_csv(header, rows))
        print(f"  {path.name:<22} {len(rows):>6} rows  {'written' if changed else 'unchanged'}")
    by_type = ", ".join(f"{k} {v}" for k, v in sorted(stats["epci_by_type"].items()))
    print(f"  EPCI by type: {by_type}")
    print(f"  communes: {stats['communes_100k_plus']} with population >= 100 000, "
          f"{stats['communes_20k_100k']} with 20 000-99 999, "
          f"{stats['communes_no_population']} with no population (0 or missing), "
          f"{stats['communes_without_epci']} without EPCI")
    n_accounts = verify_accounts(tables)
    print(f"  {ACCOUNTS_FILE.name}: {n_accounts} accounts, all territory_id found (not rewritten)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
