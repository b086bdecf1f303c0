"""`observatoire export`, `site` and `chart`: the month's files, the web site, a territory's chart."""
from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Annotated

import typer

from dagster_project import months as m
from dagster_project.cli.common import configure, console, fail, readable_warehouse


def export(
    month: Annotated[str, typer.Option(help="Month YYYY-MM.")],
    dialect: Annotated[str, typer.Option(help="excel-fr (default) | rfc4180")] = "excel-fr",
    data_dir: Annotated[Path | None, typer.Option(help="Data folder.")] = None,
    report: Annotated[bool, typer.Option(help="Also render charts and rapport.html.")] = True,
    departement: Annotated[str | None, typer.Option(
        help="Write only this département's file (INSEE code: 32, 2A, 971).")] = None,
    region: Annotated[str | None, typer.Option(
        help="Write only this région's file (INSEE code: 76).")] = None,
) -> None:
    """Write the month's CSV files (Top N per category, one per département and région,
    alertes.csv, LISEZMOI.txt) and report; or one area's file."""
    from dagster_project.publish.exports import export_month
    from dagster_project.publish.exports.csv_export import export_area
    from dagster_project.publish.exports.report import render_report
    from dagster_project.settings import load_settings

    try:
        mo = m.parse_month(month)
    except ValueError as exc:
        fail(str(exc))
    if departement is not None and region is not None:
        fail("give --departement or --region, not both")
    configure(data_dir)
    s = load_settings()
    warehouse = readable_warehouse(s)
    try:
        if departement is not None or region is not None:
            kind, code = ("departement", departement) if departement is not None else ("region", region)
            files = [export_area(warehouse, mo, s.exports_dir, kind, code.strip().upper(),
                                 dialect=dialect)]
        else:
            files = export_month(warehouse, mo, s.exports_dir, dialect=dialect)
            if report:
                files.append(render_report(warehouse, mo, s.exports_dir))
    except ValueError as exc:
        fail(str(exc))
    areas = [f for f in files if f.parent.name in ("departements", "regions")]
    for f in files:
        if f not in areas or len(areas) == 1:
            console.print(f"  {f}")
    for folder in sorted({f.parent for f in areas} if len(areas) > 1 else set()):
        console.print(f"  {folder}/ ({sum(f.parent == folder for f in areas)} files)")


def site(
    month: Annotated[str | None, typer.Option(help="Rebuild only what month YYYY-MM changes.")] = None,
    serve: Annotated[bool, typer.Option(help="Then serve the site on 127.0.0.1 (Ctrl-C stops).")] = False,
    port: Annotated[int, typer.Option(help="Port of --serve.")] = 8000,
    data_dir: Annotated[Path | None, typer.Option(help="Data folder.")] = None,
) -> None:
    """Build the static web site <data_dir>/site/ from the published warehouse."""
    from dagster_project.publish.site import build_site
    from dagster_project.settings import load_settings

    try:
        months = [m.parse_month(month)] if month else None
    except ValueError as exc:
        fail(str(exc))
    configure(data_dir)
    s = load_settings()
    warehouse = readable_warehouse(s)
    try:
        stats = build_site(warehouse, s.exports_dir, s.site_dir, months)
    except ValueError as exc:
        fail(str(exc))
    console.print(f"  {s.site_dir}: {stats.pages:,} pages, {stats.files:,} files, "
                  f"{stats.bytes / 1e6:.1f} MB, {stats.months} month(s) rendered in {stats.seconds} s")
    if serve:
        serve_site(s.site_dir, port)


def site_server(folder: Path, port: int):
    """An HTTP server on 127.0.0.1 for the site's folder, sending the headers a production
    web server sends (the Content-Security-Policy with frame-ancestors, nosniff…)."""
    import functools
    import http.server

    from dagster_project.publish.site.build import HTTP_HEADERS

    class Handler(http.server.SimpleHTTPRequestHandler):
        def end_headers(self) -> None:
            for name, value in HTTP_HEADERS.items():
                self.send_header(name, value)
            super().end_headers()

    handler = functools.partial(Handler, directory=str(folder))
    return http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)


def serve_site(folder: Path, port: int) -> None:
    with site_server(folder, port) as httpd:
        console.print(f"  serving {folder} on http://127.0.0.1:{port}/ (Ctrl-C stops)")
        with contextlib.suppress(KeyboardInterrupt):
            httpd.serve_forever()


def chart(
    territory: Annotated[str, typer.Option(help="territory_id, e.g. departement:32")],
    out: Annotated[Path | None, typer.Option(help="PNG path (default exports/territoires/<id>.png).")] = None,
    data_dir: Annotated[Path | None, typer.Option(help="Data folder.")] = None,
) -> None:
    """Draw a territory's follower curve and rank over time."""
    from dagster_project.publish.exports.charts import territory_chart
    from dagster_project.settings import load_settings

    configure(data_dir)
    s = load_settings()
    warehouse = readable_warehouse(s)
    out = out or s.exports_dir / "territoires" / f"{territory.replace(':', '_')}.png"
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        console.print(str(territory_chart(warehouse, territory, out)))
    except ValueError as exc:
        fail(str(exc))
