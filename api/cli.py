"""The ``suanli`` command: serve the exchange, manage keys, migrate the database."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from api.db.engine import database_url

if TYPE_CHECKING:
    from api.service import ExchangeService
    from exchange.core import ExchangeCore

app = typer.Typer(
    help="suanli: an exchange for compute power (PF·h of accelerator capacity).",
    no_args_is_help=True,
    add_completion=False,
)
admin_app = typer.Typer(
    help="Administration: API keys (with the server stopped).", no_args_is_help=True
)
db_app = typer.Typer(help="Database: schema and integrity.", no_args_is_help=True)
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


@contextlib.contextmanager
def _one_line_errors() -> Iterator[None]:
    """What an operator can fix is printed as one line naming the fix, exit status 1."""
    from api.db.chain import LogDamaged
    from api.db.store import DatabaseRefused, WriterLocked
    from api.startup import StartupError

    try:
        yield
    except (StartupError, LogDamaged, DatabaseRefused, WriterLocked) as exc:
        typer.echo(f"suanli: {exc}", err=True)
        raise typer.Exit(code=1) from None


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
    from api.startup import build_context

    if clock not in ("real", "simulated"):
        raise typer.BadParameter("clock is 'real' or 'simulated'")
    with _one_line_errors():
        settings = Settings(
            database_url=database_url(database_url_), clock=clock, start=start, tune_gc=True
        )
        context = build_context(settings)  # every start-up error surfaces here, in one line
    admins = [
        r
        for r in context.service.core.query.api_keys().records.values()
        if r.active and context.service.core.query.account(r.account_id).role == "admin"
    ]
    if not admins:
        typer.echo(
            "No admin key yet: set SUANLI_ADMIN_KEY before starting, or stop the server and "
            "run `suanli admin create-key`.",
            err=True,
        )
    serve_app(
        create_app(settings, context=context),
        settings,
        host=host,
        port=port,
        log_level=workers_log,
        access_log=access_log,
    )


def _stopped_exchange(url: str, running: str) -> ExchangeService:
    """The exchange at ``url`` for an admin command, opened as its writer; refused at once
    when a server runs it (``running`` says what to do instead) or none exists yet."""
    from api.db.store import WriterLocked
    from api.service import ExchangeService
    from api.startup import StartupError, open_store, shown

    try:
        store = open_store(url, lock_wait_s=0)
    except StartupError as exc:
        if isinstance(exc.__cause__, WriterLocked):
            raise StartupError(f"the exchange at {shown(url)} is running: {running}") from exc
        raise
    if store.last_seq() == 0:
        store.close()
        raise StartupError(
            f"no exchange at {shown(url)} yet: start it once with `suanli serve` (add "
            "--clock simulated --start TIME for a simulated exchange), then run this again"
        )
    # The simulated clock never moves by itself: an admin command does not touch it.
    return ExchangeService(store, clock="simulated")


@admin_app.command("create-key")
def create_key(
    database_url_: DatabaseUrl = None,
    name: Annotated[str, typer.Option(help="Name of the new admin account.")] = "admin",
    account: Annotated[
        int | None,
        typer.Option(help="Issue the key to this existing account instead (key rotation)."),
    ] = None,
) -> None:
    """Create an admin account and print its new API key (shown once), or a new key for
    an existing account with --account. Run it with the server stopped (the server is the
    only writer while it runs: there, use POST /v1/admin/accounts or
    POST /v1/admin/accounts/{id}/keys). It never moves the exchange's clock."""
    from api.keys import generate_key, generated_digest, key_prefix
    from api.service import Submission
    from exchange.ids import AccountId
    from exchange.operations import CreateAccount, IssueApiKey, Operation

    url = database_url(database_url_)
    key = generate_key()
    op: Operation
    if account is None:
        op = CreateAccount(name, "admin", key_prefix(key), generated_digest(key))
    else:
        op = IssueApiKey(AccountId(account), key_prefix(key), generated_digest(key))
    with _one_line_errors():
        service = _stopped_exchange(
            url,
            "create the key through it (POST /v1/admin/accounts, or "
            "POST /v1/admin/accounts/{id}/keys, with an admin key), or stop it first",
        )
        try:
            (item,) = service.execute([Submission(op)])
        finally:
            service.store.close()
    if item.error is not None:
        typer.echo(f"suanli: {item.error.message}", err=True)
        raise typer.Exit(code=1)
    owner = item.outcome.id if account is None else account
    typer.echo(f"admin account {owner}" if account is None else f"key for account {owner}")
    typer.echo(key)


@admin_app.command("list-keys")
def list_keys(database_url_: DatabaseUrl = None) -> None:
    """Every API key: id, account, public prefix, origin, created, revoked. Reads only."""
    from api.views import iso

    with _one_line_errors():
        core = _replayed(database_url(database_url_))
    typer.echo("id\taccount\tprefix\torigin\tcreated\trevoked")
    for r in core.query.api_keys().records.values():
        revoked = iso(r.revoked_at) if r.revoked_at is not None else "-"
        typer.echo(
            f"{r.id}\t{r.account_id}\t{r.prefix}\t{r.origin}\t{iso(r.created_at)}\t{revoked}"
        )


@admin_app.command("revoke-key")
def revoke_key(
    key: Annotated[str, typer.Argument(help="The key's id, or its public prefix.")],
    database_url_: DatabaseUrl = None,
) -> None:
    """Revoke an API key (see `suanli admin list-keys`), with the server stopped; while it
    runs, use DELETE /v1/admin/keys/{id}."""
    from api.service import Submission
    from api.startup import StartupError
    from exchange.operations import RevokeApiKey

    url = database_url(database_url_)
    with _one_line_errors():
        service = _stopped_exchange(
            url, "revoke the key through it (DELETE /v1/admin/keys/{id} with an admin key)"
        )
        try:
            book = service.core.query.api_keys()
            if key.isascii() and key.isdigit():
                ids = [int(key)]
            else:
                ids = [r.id for r in book.active(key)]
            if len(ids) != 1:
                raise StartupError(
                    f"{len(ids)} active keys have the prefix {key!r}: give the key's id "
                    "(suanli admin list-keys)"
                )
            (item,) = service.execute([Submission(RevokeApiKey(ids[0]))])
        finally:
            service.store.close()
    if item.error is not None:
        typer.echo(f"suanli: {item.error.message}", err=True)
        raise typer.Exit(code=1)
    typer.echo(f"key {ids[0]} revoked")


def _replayed(url: str) -> ExchangeCore:
    """The core rebuilt from the database's log (which is read, never written)."""
    from api.verify import replay_database

    return replay_database(url).core


SnapshotDir = Annotated[
    str | None,
    typer.Option(
        "--snapshot-dir",
        help="Snapshot directory. Default: SUANLI_SNAPSHOT_DIR, else '<database file>"
        ".snapshots' beside a SQLite file.",
    ),
]


def _snapshot_dir(url: str, configured: str | None) -> Path | None:
    from api.db.engine import make_engine
    from api.settings import Settings
    from api.snapshot import default_directory

    engine = make_engine(url)
    try:
        name = engine.url.database if engine.dialect.name == "sqlite" else None
    finally:
        engine.dispose()
    if name == ":memory:":
        name = None
    return default_directory(configured or Settings().snapshot_dir, name)


@db_app.command("verify")
def db_verify(database_url_: DatabaseUrl = None, snapshot_dir: SnapshotDir = None) -> None:
    """Check a database offline: the log's hash chain row by row, that every operation
    replays, every invariant of the state it builds, that the projections do not run
    ahead of the log, and every snapshot against the replay at its operation (matches,
    differs or unreadable). Reads only: safe while the server runs. Prints the chain's
    head digest, which an operator can keep elsewhere to detect a rewritten log. Exit
    status 1 if a snapshot differs."""
    from api.verify import replay_database

    url = database_url(database_url_)
    with _one_line_errors():
        report = replay_database(url, _snapshot_dir(url, snapshot_dir))
    for check in report.snapshots:
        typer.echo(f"snapshot {check.name} (operation {check.seq}): {check.status}: {check.detail}")
    typer.echo(
        f"ok: {report.operations} operations, chain head {report.head} (the chain holds), "
        f"state hash {report.state_hash}, projections at operation {report.projected}, "
        f"{sum(c.status == 'matches' for c in report.snapshots)} of "
        f"{len(report.snapshots)} snapshots match"
    )
    if any(c.status == "differs" for c in report.snapshots):
        typer.echo("suanli: a snapshot differs from the log's replay: delete it", err=True)
        raise typer.Exit(code=1)


@db_app.command("snapshot")
def db_snapshot(database_url_: DatabaseUrl = None, snapshot_dir: SnapshotDir = None) -> None:
    """Take a snapshot of the state at the end of the log now (from the newest usable
    snapshot and the log after it), then keep the newest SUANLI_SNAPSHOT_KEEP. Reads the
    database only: safe while the server runs."""
    from api.settings import Settings
    from api.startup import StartupError
    from api.verify import take_snapshot

    url = database_url(database_url_)
    with _one_line_errors():
        directory = _snapshot_dir(url, snapshot_dir)
        if directory is None:
            raise StartupError(
                "no snapshot directory: give --snapshot-dir (or SUANLI_SNAPSHOT_DIR)"
            )
        taken = take_snapshot(url, directory, Settings().snapshot_keep)
    typer.echo(
        f"snapshot at operation {taken.seq}: {taken.path} ({taken.size:,} bytes, "
        f"{taken.replayed} operations replayed, {taken.seconds:.2f} s; "
        f"{taken.deleted} older deleted)"
    )


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
