"""Build the reference seeds of the Observatoire from @etalab/decoupage-administratif.

Re-runnable and deterministic: running it twice gives byte-identical CSV files.

    python seeds/build_reference.py            # (or: make seeds)

What it does, for every vintage of VINTAGES (2019 … 2026, one package version each)
  1. `npm pack @etalab/decoupage-administratif@<version>` in a temporary directory (npm
     registry only; each tarball's sha512 integrity is pinned below) and reads
     package/data/{regions,departements,communes,epci}.json straight from the tarball;
  2. keeps metropolitan France + DROM (zone "metro"/"drom"; the COM are dropped; versions
     without `zone` get it derived from the département code, see seeds/README.md);
  3. writes regions.csv, departements.csv, epci.csv, communes.csv: the current vintage next
     to this file, older vintages in vintages/<year>/ (UTF-8, no BOM, ",", "\\n", header,
     sorted by code); plus categories.csv, scoring_weights.csv and commune_successors.csv
     (communes absent from a vintage that the package lists as merged into another);
  4. checks the expected COG 2026 counts (and sanity checks for every vintage) and exits
     non-zero with a clear message otherwise;
  5. verifies the hand-curated instagram_accounts.csv (never written by this script):
     every territory_id must exist in at least one vintage, its name is the latest one.

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
# (vintage, package version, tarball sha512 integrity). The vintage is the COG year.
VINTAGES = [
    (2019, "0.7.0", "sha512-ezO+LHyIrJjDBlE7DxXSbvHxSliTGT4o4+w1pMaA6FjCVDFiW74zp5Lhmi1GpY2JcelKq4m8zHjDol08O6unqQ=="),
    # 0.8.0 = EPCI 2020 with the communes 2019 (the package has no communes 2020)
    (2020, "0.8.0", "sha512-BNO0BLfPyUvLpGAStdKpZAX80hUHdkhhD3GMu7HcwERqmshl96uIU0v3/1LlL23DiMs9qRyVIRnfDDIAfHaG/w=="),
    (2021, "1.1.1", "sha512-2yD0tkK+As9OlImYdFXn9O1ABtMpExpCq0A7/d/HpruMgg7NYymUeNnHN0r8ICWgcKE//3uvMXeQ00xdOwUiZg=="),
    (2022, "2.3.1", "sha512-52zR447e9Csr/HkzmLJIrOTCAuwJNd4O9fay8BRgOQUSbqaKOP6vFpsrj5lKlrH9vA+ii07h1TnChdMFZNgcwg=="),
    (2023, "3.1.1", "sha512-/1yqSlo6Xerdz1MN+rh57hDWcAam18gwSK5u4wFjT1glRUiN/o1A4IQe6pvB9JqGvHv6WbF5X7WyE+yxeMqLig=="),
    (2024, "4.1.0", "sha512-r0lO1qhb/R7golWwfPbkstpN3WeGuROIHoJhExY7251bkc7tjL48wsnh4/cWAQYux1y/EMSTuOEwiMkh0/mK8g=="),
    (2025, "5.3.0", "sha512-I7PP8jiNOKwvBbdhoYPiwMaJ27x6aHwwGj5V0DMTOPu2YG6qyhGty1b0SIkCxpSHlUkASEfybISY4ldkTcYbbw=="),
    (2026, "6.0.0", "sha512-XavYsFlbcM/prKr8hNHPKER94IHw/dsxNM4nxjWMYk6PLFACpEedvn/7wK8Baozm0dCYhWWcf+7bcWpA5pmCaQ=="),
]
MIXED_VINTAGE = 2020  # EPCI of 2020, communes of 2019
CURRENT_VINTAGE, VERSION, INTEGRITY = VINTAGES[-1]  # = INSEE Code officiel géographique 2026
SCOPE = ("metro", "drom")
# Départements of the DROM (zone "drom"); every other 97x/98x code is a COM (out of scope).
DROM_DEPARTEMENTS = ("971", "972", "973", "974", "976")

SEEDS_DIR = Path(__file__).resolve().parent
VINTAGES_DIR = SEEDS_DIR / "vintages"
REFERENCE_TABLES = ("regions", "departements", "epci", "communes")
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
    ("engagement_rate", 5, "Interactions (likes + comments) of the posts of the last 30 days divided by (posts x followers)"),
    ("reach", 4, "Followers divided by the territory's population"),
    ("posts_per_day", 3, "Posts published in the 30 days before the snapshot, divided by 30"),
    ("followers", 2, "Number of followers"),
    ("follower_ratio", 1, "Followers divided by accounts followed (at least 1)"),
]


class BuildError(SystemExit):
    """A failed check: message on stderr, exit status 1."""

    def __init__(self, message: str) -> None:
        super().__init__(f"build_reference.py: ERROR: {message}")


def check(condition: bool, message: str) -> None:
    if not condition:
        raise BuildError(message)


# --------------------------------------------------------------------------- fetch


def fetch_package_data(names: list[str], version: str = VERSION,
                       integrity: str = INTEGRITY) -> dict[str, list[dict]]:
    """npm pack the pinned package version in a temp dir and load package/data/<name>.json."""
    spec = f"{PACKAGE}@{version}"
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
        check(info.get("integrity") == integrity,
              f"{spec}: tarball integrity {info.get('integrity')!r} != pinned {integrity!r}")
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


def zone_of(record: dict) -> str:
    """The record's `zone`; versions before 3.x have none: derived from the département code
    (971-974 and 976 are the DROM, any other 97x/98x is a COM, everything else is metro)."""
    if "zone" in record:
        return record["zone"]
    dep = record.get("departement") or record["code"]
    if dep in DROM_DEPARTEMENTS:
        return "drom"
    return "com" if dep[:2] in ("97", "98") else "metro"


def build_tables(raw: dict[str, list[dict]],
                 mixed_years: bool = False) -> dict[str, tuple[list[str], list[list]]]:
    """The four reference tables of one package version (+ merged_into, see below).

    mixed_years: the version pairs EPCI of year N with communes of year N-1 (0.8.0), so an
    EPCI may list a commune created on 1 January N: such members are left out (logged).
    """
    regions = sorted((r for r in raw["regions"] if zone_of(r) in SCOPE), key=lambda r: r["code"])
    region_codes = {r["code"] for r in regions}

    departements = sorted(
        (d for d in raw["departements"] if zone_of(d) in SCOPE), key=lambda d: d["code"]
    )
    dep_codes = {d["code"] for d in departements}
    for d in departements:
        check(d["region"] in region_codes,
              f"département {d['code']} points to unknown région {d['region']}")

    communes = sorted(
        (c for c in raw["communes"] if c["type"] == "commune-actuelle" and zone_of(c) in SCOPE),
        key=lambda c: c["code"],
    )
    commune_codes = {c["code"] for c in communes}

    epcis = sorted(raw["epci"], key=lambda e: e["code"])
    epci_of: dict[str, str] = {}
    for e in epcis:
        for m in e["membres"]:
            if mixed_years and m["code"] not in commune_codes:
                print(f"  note: EPCI {e['code']} ({e['nom']}) lists {m['code']} ({m['nom']}), "
                      "not a commune of the previous year: member left out")
                continue
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

    # Communes merged into another: listed as commune déléguée / associée of a chef-lieu.
    merged_into = {
        c["code"]: c["chefLieu"]
        for c in raw["communes"]
        if c["type"] in ("commune-deleguee", "commune-associee") and c.get("chefLieu")
        and c["code"] not in commune_codes and c["chefLieu"] in commune_codes
    }

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
            [[c["code"], c["nom"], c["departement"], c["region"], zone_of(c),
              "" if c.get("population") is None else c["population"],
              epci_of.get(c["code"], "")] for c in communes],
        ),
        "merged_into": (["code", "merged_into"], sorted([k, v] for k, v in merged_into.items())),
    }


def category_counts(tables: dict[str, tuple[list[str], list[list]]]) -> dict[str, int]:
    """Number of territories per ranking category (the rules of seeds/README.md)."""
    counts = Counter({"region": len(tables["regions"][1]),
                      "departement": len(tables["departements"][1])})
    for row in tables["epci"][1]:
        counts[{"METRO": "metropole", "MET69": "metropole", "CA": "communaute_agglomeration",
                "CU": "communaute_agglomeration"}.get(row[2], "communaute_communes")] += 1
    for row in tables["communes"][1]:
        pop = row[5] or 0
        counts["grande_ville" if pop >= 100_000 else
               "ville_moyenne" if pop >= 20_000 else "petite_ville"] += 1
    return {key: counts[key] for key, *_ in CATEGORIES}


def check_vintage(vintage: int, tables: dict[str, tuple[list[str], list[list]]]) -> None:
    """Sanity checks every vintage must pass (the exact counts are checked for 2026 only)."""
    check(len(tables["regions"][1]) == 18, f"vintage {vintage}: {len(tables['regions'][1])} régions, expected 18")
    check(len(tables["departements"][1]) == 101,
          f"vintage {vintage}: {len(tables['departements'][1])} départements, expected 101")
    check(33_000 < len(tables["communes"][1]) < 36_000,
          f"vintage {vintage}: {len(tables['communes'][1])} communes, expected 33 000-36 000")
    check(1_200 < len(tables["epci"][1]) < 1_300,
          f"vintage {vintage}: {len(tables['epci'][1])} EPCI, expected 1 200-1 300")
    for name in REFERENCE_TABLES:
        keys = [row[0] for row in tables[name][1]]
        check(len(keys) == len(set(keys)), f"vintage {vintage} {name}: duplicate codes")


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


def latest_names(by_vintage: dict[int, dict[str, tuple[list[str], list[list]]]]) -> dict[str, str]:
    """territory_id → name in the latest vintage where it exists (every vintage's ids)."""
    names: dict[str, str] = {}
    for vintage in sorted(by_vintage):
        tables = by_vintage[vintage]
        names.update({f"region:{row[0]}": row[1] for row in tables["regions"][1]})
        names.update({f"departement:{row[0]}": row[1] for row in tables["departements"][1]})
        names.update({f"epci:{row[0]}": row[1] for row in tables["epci"][1]})
        names.update({f"commune:{row[0]}": row[1] for row in tables["communes"][1]})
    return names


def verify_accounts(names: dict[str, str]) -> int:
    """Check the hand-curated registry against the reference; never writes it."""
    check(ACCOUNTS_FILE.is_file(),
          f"{ACCOUNTS_FILE} is missing: it is hand-curated and is not generated by this script")
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


def vintage_dir(vintage: int) -> Path:
    """Where a vintage's four reference files live: seeds/ for the current one."""
    return SEEDS_DIR if vintage == CURRENT_VINTAGE else VINTAGES_DIR / str(vintage)


def vintage_source(vintage: int, version: str) -> str:
    """The credit line for a vintage, as printed in exports."""
    communes = vintage - 1 if vintage == MIXED_VINTAGE else vintage
    cog = (f"EPCI {vintage}, communes {communes}" if communes != vintage
           else f"Code officiel géographique {vintage}")
    return f"INSEE, {cog} ; DGCL ; via {PACKAGE} {version}"


def main() -> int:
    by_vintage = {}
    for vintage, version, integrity in VINTAGES:
        raw = fetch_package_data(["regions", "departements", "communes", "epci"], version, integrity)
        by_vintage[vintage] = build_tables(raw, mixed_years=vintage == MIXED_VINTAGE)
        check_vintage(vintage, by_vintage[vintage])
    tables = by_vintage[CURRENT_VINTAGE]
    stats = check_counts({name: tables[name] for name in REFERENCE_TABLES})

    outputs: list[tuple[Path, list[str], list[list]]] = []
    for vintage, version, _ in VINTAGES:
        folder = vintage_dir(vintage)
        folder.mkdir(parents=True, exist_ok=True)
        for name in REFERENCE_TABLES:
            outputs.append((folder / f"{name}.csv", *by_vintage[vintage][name]))
    successors = [[vintage, code, into] for vintage, _, _ in VINTAGES
                  for code, into in by_vintage[vintage]["merged_into"][1]]
    ever = {row[0] for t in by_vintage.values() for row in t["communes"][1]}
    outputs.append((SEEDS_DIR / "commune_successors.csv", ["vintage", "code", "merged_into"],
                    [row for row in successors if row[1] in ever]))
    outputs.append((SEEDS_DIR / "vintages.csv", ["vintage", "package_version", "folder", "source"],
                    [[v, ver, str(vintage_dir(v).relative_to(SEEDS_DIR)), vintage_source(v, ver)]
                     for v, ver, _ in VINTAGES]))
    outputs.append((SEEDS_DIR / "categories.csv", ["category", "label", "top_n", "sort_order"],
                    [list(row) for row in CATEGORIES]))
    outputs.append((SEEDS_DIR / "scoring_weights.csv", ["kpi", "weight", "description"],
                    [list(row) for row in SCORING_WEIGHTS]))

    print(f"Reference built from {PACKAGE}, vintages "
          + ", ".join(f"{v} ({ver})" for v, ver, _ in VINTAGES) + ", metro + DROM:")
    for path, header, rows in outputs:
        same = path.exists() and list(csv.reader(io.StringIO(path.read_text(encoding="utf-8")))) \
            == [header] + [[str(v) for v in row] for row in rows]
        changed = not same and write_if_changed(path, render_csv(header, rows))
        print(f"  {path.relative_to(SEEDS_DIR)!s:<32} {len(rows):>6} rows  "
              f"{'written' if changed else 'unchanged'}")
    by_type = ", ".join(f"{k} {v}" for k, v in sorted(stats["epci_by_type"].items()))
    print(f"  {CURRENT_VINTAGE} EPCI by type: {by_type}")
    print(f"  {CURRENT_VINTAGE} communes: {stats['communes_100k_plus']} with population >= 100 000, "
          f"{stats['communes_20k_100k']} with 20 000-99 999, "
          f"{stats['communes_no_population']} with no population (0 or missing), "
          f"{stats['communes_without_epci']} without EPCI")
    print("  territories per category and vintage:")
    print("    " + " ".join(f"{key[:12]:>12}" for key, *_ in CATEGORIES))
    for vintage, territories in by_vintage.items():
        counts = category_counts(territories)
        print(f"    {vintage} " + " ".join(f"{counts[key]:>12}" for key, *_ in CATEGORIES))
    n_accounts = verify_accounts(latest_names(by_vintage))
    print(f"  {ACCOUNTS_FILE.name}: {n_accounts} accounts, all territory_id found (not rewritten)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
