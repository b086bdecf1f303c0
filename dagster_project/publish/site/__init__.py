"""The public static web site built from the published warehouse (see build.py)."""
from dagster_project.publish.site.build import SiteStats, build_site

__all__ = ["SiteStats", "build_site"]
