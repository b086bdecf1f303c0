"""Dagster only: assets, jobs, schedules, sensors, resources, the instance and the dbt project."""
