"""Wikidata's SPARQL endpoint: Instagram usernames (P2003) of items carrying territory codes.

One query per territory kind: the code alone does not say the kind ("84" is a région and a
département). Truthy statements only (`wikibase:BestRank`: what `wdt:` would give), with
the end-time qualifier (P582) of the username statement, so that an ended username can be
ignored. Real HTTP through `requests`; retries with backoff on 429 and 5xx (honouring
`Retry-After`) come from urllib3's `Retry`, well kept and tested upstream.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

DEFAULT_SPARQL_URL = "https://query.wikidata.org/sparql"
USER_AGENT = ("observatoire-registry-discovery/1.0 (open data observatory of the Instagram "
              "accounts of French local authorities; contact: {contact}) python-requests")

# kind → the Wikidata property holding its official code
CODE_PROPERTIES = {
    "region": "P2585",       # INSEE region code
    "departement": "P2586",  # INSEE department code
    "commune": "P374",       # INSEE municipality code
    "epci": "P1616",         # SIREN number
}

_QUERY = """SELECT ?item ?code ?username ?end WHERE {{
  ?item p:P2003 ?statement .
  ?statement a wikibase:BestRank ;
             ps:P2003 ?username .
  OPTIONAL {{ ?statement pq:P582 ?end . }}
  ?item wdt:{prop} ?code .{extra}
}}"""
# Communes, départements and régions carry a SIREN too: the EPCI query leaves them out.
_EPCI_EXTRA = """
  FILTER NOT EXISTS { ?item wdt:P374 [] . }
  FILTER NOT EXISTS { ?item wdt:P2586 [] . }
  FILTER NOT EXISTS { ?item wdt:P2585 [] . }"""


def query_for(kind: str) -> str:
    """The SPARQL query of one territory kind (selects ?item ?code ?username ?end)."""
    return _QUERY.format(prop=CODE_PROPERTIES[kind], extra=_EPCI_EXTRA if kind == "epci" else "")


@dataclass(frozen=True)
class Binding:
    kind: str
    item: str       # entity URI, e.g. http://www.wikidata.org/entity/Q12345
    code: str
    username: str   # as written on Wikidata (normalised later)
    end: str        # P582 end time (xsd:dateTime) or ""


def make_session(*, retries: int = 5, backoff_s: float = 2.0, contact: str | None = None
                 ) -> requests.Session:
    session = requests.Session()
    retry = Retry(total=retries, backoff_factor=backoff_s, status_forcelist=(429, 500, 502, 503, 504),
                  allowed_methods=frozenset({"GET", "POST"}), respect_retry_after_header=True,
                  raise_on_status=False)
    session.mount("https://", HTTPAdapter(max_retries=retry))
    session.mount("http://", HTTPAdapter(max_retries=retry))
    contact = contact or os.environ.get("OBSERVATOIRE_CONTACT") or "see the project's README"
    session.headers.update({"User-Agent": USER_AGENT.format(contact=contact),
                            "Accept": "application/sparql-results+json"})
    return session


def fetch_kind(session: requests.Session, url: str, kind: str, *,
               timeout: float = 120.0) -> list[Binding]:
    """Run the kind's query; raise RuntimeError with a readable message on failure."""
    try:
        resp = session.post(url, data={"query": query_for(kind)}, timeout=timeout)
    except requests.RequestException as exc:
        raise RuntimeError(f"Wikidata SPARQL endpoint {url} unreachable for the {kind} query: "
                           f"{type(exc).__name__}: {exc}") from None
    if resp.status_code != 200:
        raise RuntimeError(f"Wikidata SPARQL endpoint {url} answered HTTP {resp.status_code} "
                           f"to the {kind} query (after retries): {resp.text[:300]}")
    try:
        rows = resp.json()["results"]["bindings"]
    except (ValueError, KeyError, TypeError):
        raise RuntimeError(f"Wikidata SPARQL endpoint {url}: the {kind} answer is not SPARQL "
                           "JSON results") from None

    def value(row: dict, var: str) -> str:
        cell = row.get(var)
        return str(cell.get("value", "")) if isinstance(cell, dict) else ""

    return [Binding(kind, value(r, "item"), value(r, "code").strip(), value(r, "username"),
                    value(r, "end")) for r in rows if isinstance(r, dict)]


def fetch_all(url: str | None = None, *, session: requests.Session | None = None,
              kinds: tuple[str, ...] = tuple(CODE_PROPERTIES)) -> list[Binding]:
    """Every binding of every kind (one query each) from `url` or `WIKIDATA_SPARQL_URL`."""
    url = url or os.environ.get("WIKIDATA_SPARQL_URL") or DEFAULT_SPARQL_URL
    own = session is None
    session = session or make_session()
    try:
        return [b for kind in kinds for b in fetch_kind(session, url, kind)]
    finally:
        if own:
            session.close()
