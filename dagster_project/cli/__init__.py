"""`observatoire`, the command line: one module per group of commands (app.py assembles them).

- `run.py`: `run` (the pipeline over a range), `status` (the month's collection);
- `publish.py`: `export`, `site`, `chart`;
- `service.py`: `ui`, `serve`, `alert`;
- `query.py`: `sql` (a query on the analysts' read-only copy);
- `archive.py`: `verify`, `backup`;
- `accounts.py`: `accounts discover|check|add`;
- `common.py`: the console, the error exit, the environment set-up.
"""
