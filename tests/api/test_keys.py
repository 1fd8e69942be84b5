"""API keys: what is stored cannot give a key back; keys are revoked and rotated.

A copy of the database holds at most 8 characters of a key in clear; generated keys keep
228 random bits past them behind a SHA-256, operator keys a salted scrypt. Revocation
takes effect at once and survives a restart; a new SUANLI_ADMIN_KEY revokes the previous
one instead of keeping it valid beside it.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from typer.testing import CliRunner

from api import keys
from api.cli import app as cli
from tests.api.conftest import ADMIN, ADMIN_KEY, Api, open_api, sqlite_url

runner = CliRunner()


def _key_rows(url: str) -> list[dict[str, Any]]:
    engine = create_engine(url)
    with engine.connect() as conn:
        rows = [dict(r._mapping) for r in conn.execute(text("SELECT * FROM api_keys"))]
    engine.dispose()
    return rows


def _database_bytes(directory: Path) -> bytes:
    """Everything SQLite wrote: the database and its write-ahead log."""
    return b"".join(p.read_bytes() for p in directory.iterdir() if p.name.startswith("suanli.db"))


def test_a_copy_of_the_database_gives_no_key_back(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path)
    with open_api(url) as api:
        trader = api.trader("alice", deposit=None)
        assert api.get("/v1/account", headers=trader.headers).status_code == 200
    rows = {r["origin"]: r for r in _key_rows(url)}
    generated, operator = rows["generated"], rows["operator"]
    assert generated["prefix"] == trader.key[:8] and operator["prefix"] == ADMIN_KEY[:8]
    assert all(len(r["prefix"]) <= 8 for r in rows.values())
    # A generated key: sk_ and 43 characters of 32 random bytes; 38 of them stay secret.
    assert re.fullmatch(r"sk_[A-Za-z0-9_-]{43}", trader.key)
    assert generated["key_hash"] == "sha256$" + keys.generated_digest(trader.key)[7:]
    # An operator key: scrypt (n = 2^14 at least) with a 16-byte salt.
    scheme, n, _, _, salt, _ = operator["key_hash"].split("$")
    assert scheme == "scrypt" and int(n) >= 2**14 and len(bytes.fromhex(salt)) == 16
    assert keys.verify(ADMIN_KEY, operator["key_hash"])
    assert not keys.verify(ADMIN_KEY + "x", operator["key_hash"])
    # Neither key is anywhere in the files beyond its public prefix.
    raw = _database_bytes(tmp_path)
    for key in (trader.key, ADMIN_KEY):
        assert key[:8].encode() in raw
        assert key[8:].encode() not in raw and key[3:11].encode() not in raw


def test_an_operator_key_is_salted_anew_each_time() -> None:
    first, second = keys.operator_digest(ADMIN_KEY), keys.operator_digest(ADMIN_KEY)
    assert first != second
    assert keys.verify(ADMIN_KEY, first) and keys.verify(ADMIN_KEY, second)


def test_a_revoked_key_is_refused_at_once_and_after_a_restart(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path)
    with open_api(url) as api:
        trader = api.trader("alice", deposit=None)
        spare = api.ok(api.post(f"/v1/admin/accounts/{trader.id}/keys", headers=ADMIN), 201)
        new = {"Authorization": f"Bearer {spare['api_key']}"}
        assert api.get("/v1/account", headers=new).json()["id"] == trader.id
        listed = api.walk(f"/v1/admin/accounts/{trader.id}/keys", ADMIN)
        assert [k["id"] for k in listed] == [listed[0]["id"], spare["id"]]
        assert all("api_key" not in k for k in listed)
        old_id = listed[0]["id"]
        revoked = api.ok(api.delete(f"/v1/admin/keys/{old_id}", headers=ADMIN))
        assert revoked["revoked_at"] is not None
        gone = api.get("/v1/account", headers=trader.headers)
        assert gone.status_code == 401 and gone.json()["error"]["code"] == "unauthorized"
        assert api.get("/v1/account", headers=new).status_code == 200
        again = api.delete(f"/v1/admin/keys/{old_id}", headers=ADMIN)
        assert again.status_code == 422 and again.json()["error"]["code"] == "api_key_revoked"
        missing = api.delete("/v1/admin/keys/999", headers=ADMIN)
        assert missing.status_code == 404
    with open_api(url) as api:
        assert api.get("/v1/account", headers=trader.headers).status_code == 401
        assert api.get("/v1/account", headers=new).status_code == 200


def test_a_new_admin_key_revokes_the_previous_one(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path)
    rotated = "a-new-admin-key-of-the-operator"
    with open_api(url) as api:
        admin_id = api.ok(api.get("/v1/account", headers=ADMIN))["id"]
    with open_api(url, admin_key=rotated) as api:
        assert api.get("/v1/account", headers=ADMIN).status_code == 401
        new = {"Authorization": f"Bearer {rotated}"}
        assert api.ok(api.get("/v1/account", headers=new))["id"] == admin_id
        listed = api.walk(f"/v1/admin/accounts/{admin_id}/keys", new)
        assert [(k["origin"], k["revoked_at"] is None) for k in listed] == [
            ("operator", False),
            ("operator", True),
        ]
    with open_api(url, admin_key=rotated) as api:  # the same key again: nothing changes
        assert len(api.walk(f"/v1/admin/accounts/{admin_id}/keys", new)) == 2


def test_revoke_key_and_create_key_commands(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path)
    with open_api(url) as api:
        trader = api.trader("alice", deposit=None)
        now = api.ok(api.get("/v1/clock"))["now"]
    listed = runner.invoke(cli, ["admin", "list-keys", "--database-url", url])
    assert listed.exit_code == 0, listed.output
    assert trader.key[:8] in listed.output and trader.key[8:] not in listed.output
    done = runner.invoke(cli, ["admin", "revoke-key", trader.key[:8], "--database-url", url])
    assert done.exit_code == 0, done.output
    made = runner.invoke(
        cli, ["admin", "create-key", "--account", str(trader.id), "--database-url", url]
    )
    assert made.exit_code == 0, made.output
    fresh = made.output.strip().splitlines()[-1]
    with open_api(url) as api:
        assert api.get("/v1/account", headers=trader.headers).status_code == 401
        assert (
            api.ok(api.get("/v1/account", headers={"Authorization": f"Bearer {fresh}"}))["id"]
            == trader.id
        )
        assert api.ok(api.get("/v1/clock"))["now"] == now  # no command moved the clock


def test_admin_commands_refuse_a_running_exchange_in_one_line(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path)
    with open_api(url) as api:
        trader = api.trader("alice", deposit=None)
        for command in (["create-key"], ["revoke-key", str(trader.id)]):
            result = runner.invoke(cli, ["admin", *command, "--database-url", url])
            assert result.exit_code == 1
            assert result.output.count("\n") == 1 and "is running" in result.output, result.output
        assert api.get("/v1/account", headers=trader.headers).status_code == 200


def test_guessing_an_operator_key_cannot_burn_the_cpu(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Unknown keys that share an operator key's prefix are checked against its scrypt
    digest a few times a second at most; the real key, once verified, is not again."""
    checks = []
    real = keys.verify

    def counted(key: str, digest: str) -> bool:
        checks.append(key)
        return real(key, digest)

    monkeypatch.setattr(keys, "verify", counted)
    context: Any = api.client.app.state.context
    monkeypatch.setattr(context.auth, "clock", lambda: 1_000.0)  # no refill meanwhile
    guesses = 50
    for i in range(guesses):
        guess = {"Authorization": f"Bearer {ADMIN_KEY[:8]}-guess-{i:04d}"}
        assert api.get("/v1/account", headers=guess).status_code == 401
    assert len(checks) == keys.SCRYPT_CHECKS_PER_S
    assert api.get("/v1/account", headers=ADMIN).status_code == 200
    assert ADMIN_KEY not in checks  # verified at start, remembered since
