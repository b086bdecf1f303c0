"""Production collector: Instagram Graph API `business_discovery` → landing NDJSON
(docs/landing-format.md). A small package:

- `client.py`: the HTTP client (requests session, auth header, error classification,
  retries, paging of one account); `open_client` is what `accounts check` uses;
- `governor.py`: the budget governor (usage headers, slowdowns, pauses, pacing);
- `month.py`: `collect_month` — concurrency, the run's budgets, progress, the result;
- `resume.py`: which accounts of the month are already collected (resumption);
- `writer.py`: the landing writer;
- `options.py`: `CollectorOptions` and `TokenError`;
- `token.py`: token health (`debug_token`: validity, expiry, scopes) for `status` and alerts.
"""
from dagster_project.collect.graph_api.client import (
    SOURCE,
    GraphClient,
    build_fields,
    check_credentials,
    classify_error,
    open_client,
)
from dagster_project.collect.graph_api.governor import parse_usage
from dagster_project.collect.graph_api.month import CollectionResult, collect_month, name_some
from dagster_project.collect.graph_api.options import CollectorOptions, TokenError
from dagster_project.collect.graph_api.resume import (
    COLLECTED_STATUSES,
    read_collected_handles,
    read_month_statuses,
    read_ok_handles,
)
from dagster_project.collect.graph_api.token import (
    TokenHealth,
    check_token,
    token_problem,
    token_rows,
)

__all__ = [
    "COLLECTED_STATUSES", "SOURCE", "CollectionResult", "CollectorOptions", "GraphClient",
    "TokenError", "TokenHealth", "build_fields", "check_credentials", "check_token",
    "classify_error", "collect_month", "name_some", "open_client", "parse_usage",
    "read_collected_handles", "read_month_statuses", "read_ok_handles", "token_problem",
    "token_rows",
]
