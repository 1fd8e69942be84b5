"""A damaged or tampered database never starts as a silently different exchange.

The operation log is a hash chain (api.db.chain): a deleted row, an edited row, or an
edited row whose own link was recomputed stops start-up with one line naming the first
bad seq; so does a log that lost its tail (its projections reach further) or an emptied
log beside an exchange's tables; an empty file in place of a SQLite database is refused
and left as it is. ``suanli db verify`` finds the same offline. A log written before the
chain existed is chained by the migration and replays to the same state.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from typer.testing import CliRunner

from api.cli import app as cli
from api.db.chain import LogDamaged, link
from api.db.migrate import upgrade
from api.db.store import Batch, DatabaseRefused, Store
from api.keys import generated_digest
from api.projection import log_row
from api.settings import Settings
from api.startup import build_context
from exchange.core import ExchangeCore
from exchange.operations import Deposit, PlaceOrder, RegisterSite, encode_operation
from exchange.orders import Side

from .market import START_US, core_options, rows, setup_market, start_service

runner = CliRunner()


def _exchange(open_store: Callable[..., Store]) -> tuple[int, str]:
    """A small market, closed again: (its last seq, its state hash)."""
    store = open_store()
    service = start_service(store)
    market = setup_market(service.run)
    for _ in range(3):
        service.run(Deposit(market.lab, 7))
    result = service.seq, service.core.state_hash()
    store.close()
    return result


def _sql(url: str, statement: str, **params: object) -> None:
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text(statement), params)
    engine.dispose()


def _payload(url: str, seq: int) -> bytes:
    engine = create_engine(url)
    with engine.connect() as conn:
        value = conn.execute(
            text("SELECT payload FROM operation_log WHERE seq = :s"), {"s": seq}
        ).scalar()
    engine.dispose()
    return bytes(value)


def _row(url: str, seq: int) -> tuple[int, bytes]:
    """(applied_at, chain) of log row ``seq``."""
    engine = create_engine(url)
    with engine.connect() as conn:
        applied_at, chain = conn.execute(
            text("SELECT applied_at, chain FROM operation_log WHERE seq = :s"), {"s": seq}
        ).one()
    engine.dispose()
    return int(applied_at), bytes(chain)


def _rewrite(url: str, seq: int, payload: bytes, chain: bytes) -> None:
    _sql(
        url,
        "UPDATE operation_log SET payload = :p, chain = :c WHERE seq = :s",
        p=payload,
        c=chain,
        s=seq,
    )


def _verify(url: str) -> tuple[int, str]:
    result = runner.invoke(cli, ["db", "verify", "--database-url", url])
    return result.exit_code, result.output


def _refused_at(open_store: Callable[..., Store], seq: int, what: str) -> None:
    with pytest.raises(LogDamaged) as info:
        start_service(open_store())
    assert info.value.seq == seq
    message = str(info.value)
    assert f"damaged at seq {seq}: {what}" in message and "\n" not in message


def test_an_intact_log_verifies_and_restarts_to_the_same_state(
    open_store: Callable[..., Store], db_url: str
) -> None:
    seq, state = _exchange(open_store)
    code, output = _verify(db_url)
    assert code == 0, output
    assert output.startswith(f"ok: {seq} operations, chain head ")
    assert f"state hash {state}" in output
    assert start_service(open_store()).core.state_hash() == state


def test_a_deleted_log_row_stops_start_up_naming_its_seq(
    open_store: Callable[..., Store], db_url: str
) -> None:
    seq, _ = _exchange(open_store)
    _sql(db_url, "DELETE FROM operation_log WHERE seq = :s", s=seq - 2)
    _refused_at(open_store, seq - 2, "the row is missing")
    code, output = _verify(db_url)
    assert code == 1 and f"damaged at seq {seq - 2}" in output
    assert output.count("\n") == 1  # one line


def test_an_edited_log_row_stops_start_up_naming_its_seq(
    open_store: Callable[..., Store], db_url: str
) -> None:
    seq, _ = _exchange(open_store)
    edited = _payload(db_url, seq).replace(b'"amount":7', b'"amount":9')
    assert edited != _payload(db_url, seq)
    _sql(db_url, "UPDATE operation_log SET payload = :p WHERE seq = :s", p=edited, s=seq)
    _refused_at(open_store, seq, "the row differs from what was written")
    assert _verify(db_url)[0] == 1


def test_an_edit_that_recomputes_its_own_link_breaks_the_next_one(
    open_store: Callable[..., Store], db_url: str
) -> None:
    seq, _ = _exchange(open_store)
    target = seq - 1
    previous = _row(db_url, target - 1)[1]
    edited = _payload(db_url, target).replace(b'"amount":7', b'"amount":9')
    _rewrite(
        db_url, target, edited, link(previous, target, _row(db_url, target)[0], "Deposit", edited)
    )
    _refused_at(open_store, seq, "the row differs from what was written")


def test_a_row_that_does_not_decode_stops_start_up(
    open_store: Callable[..., Store], db_url: str
) -> None:
    seq, _ = _exchange(open_store)
    previous = _row(db_url, seq - 1)[1]
    garbage = b'{"type":"Deposit","account_id":"x"}'
    _rewrite(db_url, seq, garbage, link(previous, seq, _row(db_url, seq)[0], "Deposit", garbage))
    _refused_at(open_store, seq, "the operation does not decode")


def test_a_log_that_lost_its_tail_is_refused(open_store: Callable[..., Store], db_url: str) -> None:
    seq, _ = _exchange(open_store)
    _sql(db_url, "DELETE FROM operation_log WHERE seq > :s", s=seq - 2)
    with pytest.raises(DatabaseRefused, match=f"ends at seq {seq - 2} but the projections reach"):
        start_service(open_store())
    assert _verify(db_url)[0] == 1


def test_an_emptied_log_beside_an_exchange_is_refused(
    open_store: Callable[..., Store], db_url: str
) -> None:
    _exchange(open_store)
    _sql(db_url, "DELETE FROM operation_log")
    _sql(db_url, "DELETE FROM projection_state")
    with pytest.raises(DatabaseRefused, match="the operation log is empty but"):
        start_service(open_store())


def test_an_empty_file_in_place_of_the_database_is_refused_and_kept(tmp_path: Path) -> None:
    path = tmp_path / "suanli.db"
    path.write_bytes(b"")
    with pytest.raises(DatabaseRefused, match="is an empty file, not a suanli database"):
        Store(f"sqlite:///{path}")
    assert path.stat().st_size == 0  # not turned into a new, empty exchange
    result = runner.invoke(cli, ["admin", "list-keys", "--database-url", f"sqlite:///{path}"])
    assert result.exit_code == 1


def test_a_log_written_before_the_chain_is_chained_by_the_migration(tmp_path: Path) -> None:
    """A database at revision 0003 (no chain column, keys in their own table): the
    migration chains its log, the log replays to the same state as before, and its API
    key is recorded in the log at the next start."""
    reference = Store(f"sqlite:///{tmp_path / 'reference.db'}")
    service = start_service(reference)
    setup_market(service.run)
    state = service.core.state_hash()
    rows = [(seq, op) for seq, op in reference.operations()]
    reference.close()

    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = create_engine(url)
    upgrade(engine, "0003")
    key = "sk_" + "A" * 43
    with engine.begin() as conn:
        for seq, op in rows:
            conn.execute(
                text(
                    "INSERT INTO operation_log (seq, applied_at, kind, payload) "
                    "VALUES (:s, :a, :k, :p)"
                ),
                {"s": seq, "a": START_US, "k": type(op).__name__, "p": encode_operation(op)},
            )
        conn.execute(
            text(
                "INSERT INTO api_keys (account_id, key_hash, prefix, created_at) "
                "VALUES (1, :h, :p, :c)"
            ),
            {"h": generated_digest(key)[7:], "p": key[:12], "c": START_US},
        )
        conn.execute(text("UPDATE projection_state SET seq = :s"), {"s": len(rows)})
    engine.dispose()

    migrated = Store(url)  # migrates: chains the log, sets the old keys aside
    replayed = ExchangeCore(**core_options())
    for entry in migrated.read_log():
        replayed.apply(entry.op)
        replayed.take_changes()
    assert replayed.state_hash() == state
    assert len(migrated.legacy_api_keys()) == 1
    migrated.close()

    ctx = build_context(Settings(database_url=url, clock="simulated"))
    try:
        assert ctx.service.seq == len(rows) + 1  # the old key, now in the log
        (record,) = ctx.service.core.api_keys.records.values()
        assert (record.origin, record.prefix, record.account_id) == ("legacy", key[:8], 1)
        assert ctx.lookup(key) == 1
        assert ctx.service.store.legacy_api_keys() == []
    finally:
        ctx.service.store.close()
    code, output = _verify(url)
    assert code == 0, output


def test_a_logged_nul_never_stops_a_start_or_a_projection(
    open_store: Callable[..., Store], db_url: str
) -> None:
    """An operation log whose rows hold NUL characters (as a version without today's
    checks accepted them) replays and projects on SQLite and PostgreSQL, whose text
    columns cannot hold NUL: the projections show U+FFFD in its place."""
    store = open_store()
    service = start_service(store)
    market = setup_market(service.run)
    ops = [
        RegisterSite(market.dc, "a\x00b", "east", "1.2", "0", location="x\x00y"),
        PlaceOrder(market.lab, market.symbol, Side.BUY, 1_000, 190_000, client_order_id="c\x00d"),
    ]
    previous, seq, batch = service._chain, service.seq, Batch()
    for op in ops:  # written as an earlier version would have: straight to the log
        seq += 1
        row = log_row(seq, service.core.now, op, previous)
        previous = row[4]
        batch.operations.append(row)
    store.write(batch)
    store.close()

    restarted = start_service(open_store())
    assert restarted.projection_error is None
    assert restarted.projected_seq == restarted.seq == seq
    (site,) = rows(restarted.store, "sites", owner=market.dc, location="x\ufffdy")
    assert site["name"] == "a\ufffdb"
    (order,) = rows(restarted.store, "orders")
    assert order["client_order_id"] == "c\ufffdd"
    assert _verify(db_url)[0] == 0
