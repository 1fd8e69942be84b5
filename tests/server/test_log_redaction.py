"""No key in any log line: a real server with its access log on and every logger at
trace level is given keys every way a client can give one (Authorization headers, the
deprecated ``?key=``, percent-encoded, an auth message, a malformed one) and its whole
log is searched for them; and the filter itself, on records that carry keys in their
message, arguments, traceback and WebSocket frames."""

from __future__ import annotations

import json
import logging
import secrets
from pathlib import Path

import httpx
import pytest
from websockets.frames import Frame, Opcode
from websockets.sync.client import connect

from api.server import RedactSecrets, redact
from tests.server.running import running_server

pytestmark = pytest.mark.timeout(180)

GUARD_S = 60


def leaked(secret: str, text: str) -> list[str]:
    """The 12-character pieces of ``secret`` found in ``text``."""
    return [secret[i : i + 12] for i in range(len(secret) - 11) if secret[i : i + 12] in text]


def test_no_key_reaches_a_log_line(tmp_path: Path) -> None:
    admin = "adm-" + secrets.token_hex(16)  # not shaped like an issued key
    env = {"SUANLI_ADMIN_KEY": admin}
    with running_server(tmp_path, env, "--access-log", "--log-level", "trace") as server:
        with httpx.Client(base_url=server.base, timeout=GUARD_S) as client:
            made = client.post(
                "/v1/admin/accounts",
                json={"name": "alice"},
                headers={"Authorization": f"Bearer {admin}"},
            )
            key = made.json()["api_key"]
            bearer = {"Authorization": f"Bearer {key}"}
            assert client.get("/v1/account", headers=bearer).status_code == 200
            assert client.get(f"/v1/account?key={key}").status_code == 401
            client.get(f"/v1/instruments?api_key={key}&key={admin}&limit=1")
            client.get(f"/v1/nowhere?k%65y={admin}", headers={"authorization": admin})
            client.post("/v1/orders", content=b"{not json", headers=bearer)
            client.post("/v1/orders", json={"key": key}, headers=bearer)
        ws_url = server.ws
        for url, headers, first in [
            (f"{ws_url}?key={key}", {}, None),
            (f"{ws_url}?k%65y={admin}&x=1", {}, None),
            (ws_url, {"Authorization": f"Bearer {admin}"}, None),
            (ws_url, {}, {"op": "auth", "id": 1, "key": admin}),
            (ws_url, {}, {"key": key, "op": "auth", "pad": "x" * 80}),
            (ws_url, {}, {"op": "auth", "key": key, "zzz": 1}),  # refused: unknown field
            (ws_url, {}, {"op": "auth", "key": key + "-wrong"}),
        ]:
            with connect(url, additional_headers=headers) as ws:
                if first is not None:
                    ws.send(json.dumps(first))
                ws.send(json.dumps({"op": "subscribe", "channels": ["orders"]}))
                ws.send(json.dumps({"op": "ping", "id": "done"}))
                while json.loads(ws.recv(timeout=GUARD_S)).get("type") != "pong":
                    pass
    log = server.log.read_text()
    assert leaked(admin, log) == [] and leaked(key, log) == []
    # the lines that would have carried them are there, with the key taken out
    assert '"GET /v1/account?key=REDACTED HTTP/1.1" 401' in log
    assert '"WebSocket /v1/ws?key=REDACTED" [accepted]' in log
    assert "k%65y=REDACTED&x=1" in log
    assert "authorization" in log.lower() and "TEXT [" in log  # trace: headers and frames


@pytest.mark.parametrize(
    "text",
    [
        "GET /v1/ws?key={k} HTTP/1.1",
        "GET /v1/ws?x=1&KEY={k}#top",
        "/v1/ws?k%65y={k}",
        "query_string: b'api_key={k}&n=2'",
        "Authorization: Bearer {k}",
        "headers=[(b'authorization', b'Bearer {k}')]",
        "{{'Authorization': '{k}'}}",
        '{{"op": "auth", "key": "{k}"}}',
        '\'{{"op": "auth", "key": "{k}...\' [57 bytes]',
        "token={k}",
        "ValueError: bad key sk_{k}",
    ],
)
def test_redact_takes_the_key_out(text: str) -> None:
    secret = secrets.token_urlsafe(32)
    line = text.format(k=secret)
    redacted = redact(line)
    assert leaked(secret, redacted) == [], redacted
    assert redact(redacted) == redacted  # a record may pass two filters


def test_the_filter_redacts_messages_arguments_tracebacks_and_frames() -> None:
    secret = "sk_" + secrets.token_urlsafe(32)
    other = secrets.token_urlsafe(32)
    records = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(self.format(record))

    handler = Keep()
    handler.addFilter(RedactSecrets())
    logger = logging.getLogger("suanli.test.redaction")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("GET /v1/ws?key=%s", other)
        logger.warning('"%s %s HTTP/%s" %d', "GET", f"/v1/ws?key={other}", "1.1", 200)
        logger.warning("%(scope)s", {"scope": {"query_string": f"key={other}".encode()}})
        logger.warning("< %s", Frame(Opcode.TEXT, json.dumps({"op": "auth", "k": other}).encode()))
        try:
            raise ValueError(f"no account for {secret}")
        except ValueError:
            logger.exception("failed with Authorization: Bearer %s", other)
    finally:
        logger.removeHandler(handler)
    assert len(records) == 5
    text = "\n".join(records)
    assert leaked(other, text) == [] and leaked(secret, text) == [], text
    assert "TEXT [" in records[3] and "Traceback" in records[4]
