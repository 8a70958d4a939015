"""drumscribe web: the pages (static/) and the HTTP API (app.py) of `drumscribe web` (drumscribe/web_cli.py)."""
