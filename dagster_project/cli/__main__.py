"""`python -m dagster_project.cli …` is `observatoire …`."""
from dagster_project.cli.app import app

app()
