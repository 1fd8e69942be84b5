"""The ``suanli`` command: serve the exchange, manage keys, migrate the database."""

from __future__ import annotations

from typing import Annotated

import typer

from api.db.engine import database_url

app = typer.Typer(
    help="suanli: an exchange for compute power (PF·h of accelerator capacity).",
    no_args_is_help=True,
    add_completion=False,
)
admin_app = typer.Typer(help="Administration: API keys.", no_args_is_help=True)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
app.add_typer(admin_app, name="admin")
app.add_typer(db_app, name="db")

DatabaseUrl = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        help="SQLAlchemy URL, e.g. postgresql://user@host/db. Default: SUANLI_DATABASE_URL, "
        "else the SQLite file suanli.db in the working directory.",
    ),
]


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    database_url_: DatabaseUrl = None,
    clock: Annotated[
        str,
        typer.Option(
            help="'real' follows the wall clock; 'simulated' moves only when an admin "
            "calls POST /v1/admin/clock (tests and demos)."
        ),
    ] = "real",
    start: Annotated[
        str | None,
        typer.Option(help="ISO 8601 start time of a NEW exchange on the simulated clock."),
    ] = None,
    workers_log: Annotated[str, typer.Option("--log-level", help="uvicorn log level.")] = "info",
    access_log: Annotated[
        bool, typer.Option(help="Log every request (costs throughput; off by default).")
    ] = False,
) -> None:
    """Run the exchange's HTTP API and WebSocket (the database migrates itself on start)."""
    from api.app import create_app
    from api.server import serve as serve_app
    from api.settings import Settings

    if clock not in ("real", "simulated"):
        raise typer.BadParameter("clock is 'real' or 'simulated'")
    settings = Settings(
        database_url=database_url(database_url_), clock=clock, start=start, tune_gc=True
    )
    if not settings.admin_key:
        typer.echo(
            "No SUANLI_ADMIN_KEY set: create an admin key with `suanli admin create-key` "
            "(with the server stopped) or set SUANLI_ADMIN_KEY before starting.",
            err=True,
        )
    serve_app(
        create_app(settings),
        settings,
        host=host,
        port=port,
        log_level=workers_log,
        access_log=access_log,
    )


@admin_app.command("create-key")
def create_key(
    database_url_: DatabaseUrl = None,
    name: Annotated[str, typer.Option(help="Name of the new admin account.")] = "admin",
) -> None:
    """Create an admin account and print its new API key (shown once). Run it with the
    server stopped: the server is the only writer while it runs."""
    from api.app import bootstrap_admin_key, build_context
    from api.deps import generate_key
    from api.settings import Settings

    settings = Settings(database_url=database_url(database_url_), admin_key=None)
    ctx = build_context(settings)
    key = generate_key()
    account_id = bootstrap_admin_key(ctx, key, name=name)
    ctx.service.store.close()
    typer.echo(f"admin account {account_id}")
    typer.echo(key)


@db_app.command("upgrade")
def db_upgrade(database_url_: DatabaseUrl = None) -> None:
    """Apply every pending schema migration (Alembic) to the database."""
    from api.db.engine import make_engine
    from api.db.migrate import upgrade

    url = database_url(database_url_)
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    typer.echo(f"database at {engine.url.render_as_string(hide_password=True)} is up to date")


@app.command()
def demo(
    days: Annotated[int, typer.Option(min=1, max=30, help="Days of hourly delivery windows.")] = 3,
    traders: Annotated[
        int, typer.Option(min=1, max=200, help="Number of buyers, and of sellers.")
    ] = 12,
    seed: Annotated[
        int, typer.Option(help="Random seed: the same seed gives the same report.")
    ] = 7,
    out: Annotated[
        str, typer.Option(help="Folder for the report (JSON, text), the charts and the database.")
    ] = "demo-output",
    database_url_: Annotated[
        str | None,
        typer.Option(
            "--database-url",
            help="SQLAlchemy URL of an EMPTY database. Default: a new SQLite file in --out.",
        ),
    ] = None,
) -> None:
    """Run a demo market end to end (listing, trading, delivery, settlement) on the
    simulated clock through the exchange service; print a report and write charts."""
    from pathlib import Path

    from rich.console import Console

    from api.demo.runner import run
    from api.demo.simulate import DemoError

    url = database_url(database_url_) if database_url_ else None
    console = Console()
    if not console.is_terminal:
        console = Console(width=140)  # piped: wide enough for the tables
    try:
        run(Path(out), database_url=url, seed=seed, days=days, traders=traders, console=console)
    except DemoError as exc:
        typer.echo(f"demo: {exc}", err=True)
        raise typer.Exit(code=1) from exc


def main() -> None:  # pragma: no cover - console entry point
    app()


if __name__ == "__main__":  # pragma: no cover - ``python -m api.cli``
    app()
