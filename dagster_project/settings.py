"""Runtime settings, all from the environment."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SEEDS_DIR = PROJECT_ROOT / "seeds"
DBT_PROJECT_DIR = PROJECT_ROOT / "dbt_project"
DEFAULT_GRAPH_URL = "https://graph.facebook.com/v26.0"


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    dagster_home: Path
    accounts_file: Path
    graph_url: str
    instagram_user_id: str | None
    access_token: str | None

    @property
    def warehouse(self) -> Path:
        return self.data_dir / "warehouse.duckdb"

    @property
    def published_warehouse(self) -> Path:
        return self.data_dir / "published" / "warehouse.duckdb"

    @property
    def landing_dir(self) -> Path:
        return self.data_dir / "landing" / "instagram"

    @property
    def exports_dir(self) -> Path:
        return self.data_dir / "exports"

    @property
    def site_dir(self) -> Path:
        return self.data_dir / "site"

    def __repr__(self) -> str:  # never print the token
        return (f"Settings(data_dir={self.data_dir}, dagster_home={self.dagster_home}, "
                f"accounts_file={self.accounts_file}, graph_url={self.graph_url}, "
                f"instagram_user_id={self.instagram_user_id}, access_token=***)")


def load_settings(environ: dict | None = None) -> Settings:
    env = os.environ if environ is None else environ
    data_dir = Path(env.get("OBSERVATOIRE_DATA_DIR") or "data").resolve()
    dagster_home = Path(env.get("DAGSTER_HOME") or data_dir / "dagster").resolve()
    accounts = Path(env.get("OBSERVATOIRE_ACCOUNTS") or SEEDS_DIR / "instagram_accounts.csv")
    return Settings(
        data_dir=data_dir,
        dagster_home=dagster_home,
        accounts_file=accounts.resolve(),
        graph_url=(env.get("INSTAGRAM_GRAPH_URL") or DEFAULT_GRAPH_URL).rstrip("/"),
        instagram_user_id=env.get("INSTAGRAM_USER_ID") or None,
        access_token=env.get("INSTAGRAM_ACCESS_TOKEN") or None,
    )
