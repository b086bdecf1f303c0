"""Run settings as a Dagster resource (editable in the launchpad, set by the CLI)."""
from __future__ import annotations

from pathlib import Path

from dagster import ConfigurableResource
from pydantic import Field

from dagster_project.settings import Settings, load_settings

SOURCES = ("demo", "landing", "graph_api")


class ObservatoireResource(ConfigurableResource):
    """Where the data lives and where snapshots come from."""

    data_dir: str = Field(description="Data folder: landing/, warehouse.duckdb, exports/, published/.")
    source: str = Field(default="demo", description="demo | landing | graph_api")
    accounts_file: str = Field(
        default="", description="Accounts registry CSV; empty = seeds/instagram_accounts.csv "
        "(the demo source adds simulated accounts to it unless a registry is given).")
    scale: bool = Field(default=False, description="Demo: give every territory an account (benchmark).")

    def settings(self) -> Settings:
        base = load_settings()
        return Settings(
            data_dir=Path(self.data_dir), dagster_home=base.dagster_home,
            accounts_file=Path(self.accounts_file) if self.accounts_file else base.accounts_file,
            graph_url=base.graph_url, instagram_user_id=base.instagram_user_id,
            access_token=base.access_token)

    def check(self) -> None:
        if self.source not in SOURCES:
            raise ValueError(f"unknown source {self.source!r}: expected one of {', '.join(SOURCES)}")

    @property
    def demo_registry(self) -> Path:
        return Path(self.data_dir) / "demo" / "accounts.csv"

    def registry_path(self) -> Path:
        """The registry the run ranks: the given file, else the demo or the real one."""
        if self.accounts_file:
            return Path(self.accounts_file)
        if self.source == "demo":
            return self.demo_registry
        return self.settings().accounts_file


def default_resource() -> ObservatoireResource:
    import os

    s = load_settings()
    return ObservatoireResource(
        data_dir=str(s.data_dir), source=os.environ.get("OBSERVATOIRE_SOURCE", "demo"),
        accounts_file=os.environ.get("OBSERVATOIRE_ACCOUNTS", ""))
