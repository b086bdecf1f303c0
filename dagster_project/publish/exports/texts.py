"""The words of the exports (CSV, LISEZMOI, report, site): alerts, sources, reference
data, and the method's texts built from the reference tables — the KPI weights from
seeds/scoring_weights.csv, the Top N from the categories (seeds/categories.csv through
`marts.dim_categories`) — so that a change of weight or Top N changes the texts too."""
from __future__ import annotations

from collections import Counter
from functools import lru_cache
from pathlib import Path
from typing import Any

from dagster_project.registry.territories import scoring_weights
from dagster_project.settings import SEEDS_DIR

ALERT_WORDING = {"unavailable": "compte indisponible", "no_snapshot": "aucun relevé",
                 "account_changed": "compte changé (autre identifiant Instagram)",
                 "territory_inactive": "territoire absent du millésime (non classé)",
                 "likes_hidden": "mentions J'aime masquées (taux d'engagement non calculé)"}
# The engagement cell of an account whose posts of the reference window all hide their likes.
HIDDEN = "masqué"
SOURCE_WORDING = {
    "graph_api": "API Graph d'Instagram (business_discovery : données publiques des "
                 "comptes professionnels et créateurs)",
    "demo": "données simulées (démo) — aucun appel à Instagram",
    "import": "relevés importés (format business_discovery de l'API Graph d'Instagram)",
}
REFERENCE_DATA = ("Code officiel géographique (COG) 2026 de l'INSEE, via le paquet npm "
                  "@etalab/decoupage-administratif 6.0.0 (Etalab), Licence Ouverte 2.0 ; "
                  "population municipale")


def reference_data(vintage: int | None, package_version: str | None) -> str:
    """The reference line of a month's files: the vintage (millésime) it was ranked with."""
    if vintage is None or package_version is None:
        return REFERENCE_DATA
    # The package has no communes 2020: its 2020 version pairs the EPCI 2020 with the
    # communes (and populations) 2019.
    cog = (f"EPCI {vintage} et communes {vintage - 1} du Code officiel géographique (COG)"
           if vintage == 2020 else f"Code officiel géographique (COG) {vintage}")
    return (f"millésime {vintage} : {cog} de l'INSEE, via le paquet npm "
            f"@etalab/decoupage-administratif {package_version} (Etalab), Licence Ouverte 2.0 ; "
            "population municipale de ce millésime")


DEMO_NOTICE = "DONNÉES SIMULÉES (démo) : ces chiffres ne décrivent pas les comptes réels"
# French name and formula of each KPI of seeds/scoring_weights.csv (docs/methodologie.md).
KPI_WORDING = {
    "engagement_rate": ("taux d'engagement",
                        ("(mentions J'aime + commentaires) des publications des 30 jours "
                         "précédant le relevé ÷ (nombre de ces publications × abonnés)")),
    "reach": ("portée", "abonnés ÷ population municipale du territoire"),
    "posts_per_day": ("publications par jour",
                      "publications des 30 jours précédant le relevé ÷ 30"),
    "followers": ("abonnés", "nombre d'abonnés au relevé"),
    "follower_ratio": ("ratio abonnés / abonnements",
                       "abonnés ÷ nombre de comptes suivis (au moins 1)"),
}
_COUNT_WORDS = ["zéro", "un", "deux", "trois", "quatre", "cinq", "six", "sept", "huit",
                "neuf", "dix"]


@lru_cache(maxsize=4)
def weights_text(seeds_dir: Path = SEEDS_DIR) -> list[tuple[str, int, str]]:
    """(French name, weight, formula) of each KPI, in the order of seeds/scoring_weights.csv
    (a KPI without French wording keeps its key and the seed's description)."""
    out = []
    for kpi, weight, description in scoring_weights(seeds_dir):
        name, how = KPI_WORDING.get(kpi, (kpi, description))
        out.append((name, weight, how))
    return out


def count_word(n: int) -> str:
    """3 → 'trois' (a number in words up to ten, else digits)."""
    return _COUNT_WORDS[n] if 0 <= n < len(_COUNT_WORDS) else str(n)


def french_list(items: list[str]) -> str:
    """['5', '4', '3'] → '5, 4 et 3'."""
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " et " + items[-1]


def top_n_text(categories: list[dict[str, Any]], each: str = "de chaque catégorie") -> str:
    """'Top 50 de chaque catégorie (Top 20 pour les grandes villes)' from the categories'
    `top_n` and `label`: the most common Top N, then the categories that differ."""
    sizes = [c["top_n"] for c in categories if c.get("top_n")]
    if not sizes:
        return f"Top N {each}"
    common = Counter(sizes).most_common(1)[0][0]
    others = [f"Top {c['top_n']} pour les {c['label'].lower()}" for c in categories
              if c.get("top_n") and c["top_n"] != common]
    return f"Top {common} {each}" + (f" ({', '.join(others)})" if others else "")
