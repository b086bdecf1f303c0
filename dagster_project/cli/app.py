"""The `observatoire` command: every command, in the order `observatoire --help` lists them."""
from __future__ import annotations

import typer

from dagster_project.cli import accounts, archive, publish, query, run, service

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Observatoire: monthly Instagram rankings of French local authorities.")
app.add_typer(accounts.app, name="accounts")
for command in (run.run, publish.export, publish.site, publish.chart, service.ui, service.serve,
                service.alert, run.status, query.sql, archive.verify, archive.backup):
    app.command()(command)
