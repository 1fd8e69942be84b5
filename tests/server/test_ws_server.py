"""The WebSocket on a real server (``suanli serve``): a frame over the message limit is
refused from its header, before its payload is read; a message at the limit is answered;
a socket that does not read what it asked for is closed once its send buffer fills."""

from __future__ import annotations

import json
import socket
from typing import Any

import httpx
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from tests.api.conftest import GPU_CLASS, TIER_BODY
from tests.server.running import Running, running_server

pytestmark = pytest.mark.timeout(180)

GUARD_S = 60  # a hang guard for socket reads, not a measured time
ADMIN_KEY = "ws-server-admin-key-0123456789"
HANDSHAKE = (
    b"GET /v1/ws HTTP/1.1\r\nHost: suanli\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Running:
    env = {
        "SUANLI_ADMIN_KEY": ADMIN_KEY,
        "SUANLI_RATE_LIMIT_PER_S": "0",
        "SUANLI_MAX_OPEN_ORDERS": "100000",
        "SUANLI_WS_SEND_BUFFER_BYTES": str(256 * 1024),
    }
    with running_server(tmp_path_factory.mktemp("ws"), env) as running:
        yield running  # type: ignore[misc]


def read_exactly(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise AssertionError(f"closed after {data!r}")
        data += chunk
    return data


def test_an_oversized_frame_is_refused_from_its_header(server: Running) -> None:
    """A text frame announcing 16 MiB, of which one kilobyte is sent: the server closes
    with 1009 at once, without waiting for (or buffering) the rest."""
    sock = server.connect()
    sock.settimeout(GUARD_S)
    sock.sendall(HANDSHAKE)
    response = b""
    while b"\r\n\r\n" not in response:
        response += sock.recv(4096)
    assert response.startswith(b"HTTP/1.1 101 ")
    header = bytes([0x81, 0x80 | 127]) + (16 * 1024 * 1024).to_bytes(8, "big") + bytes(4)
    sock.sendall(header + b" " * 1024)
    try:
        first, length = read_exactly(sock, 2)
    except TimeoutError:
        pytest.fail("the server waited for the rest of the 16 MiB frame")
    assert first == 0x88  # a close frame, final
    code = int.from_bytes(read_exactly(sock, length)[:2], "big")
    assert code == 1009
    sock.close()


def test_a_message_at_the_limit_is_answered_and_one_byte_more_closes(server: Running) -> None:
    limit = 64 * 1024
    ping = json.dumps({"op": "ping", "id": "big"})
    with connect(server.ws, max_size=None, compression=None) as ws:
        ws.send(ping[:-1] + " " * (limit - len(ping)) + "}")
        assert json.loads(ws.recv(timeout=GUARD_S)) == {"type": "pong", "id": "big"}
        ws.send(ping[:-1] + " " * (limit - len(ping) + 1) + "}")
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=GUARD_S)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009


def test_a_compressed_message_is_bounded_by_its_size_once_inflated(server: Running) -> None:
    """permessage-deflate: a frame of a few kilobytes that inflates to a megabyte is refused
    (1009) like the megabyte itself."""
    ping = json.dumps({"op": "ping", "id": "bomb"})
    with connect(server.ws, max_size=None) as ws:  # compression on, as clients have it
        ws.send(ping[:-1] + " " * (1024 * 1024) + "}")
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=GUARD_S)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009


def _trader(server: Running) -> dict[str, Any]:
    admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
    with httpx.Client(base_url=server.base, headers=admin, timeout=GUARD_S) as client:
        client.post("/v1/admin/gpu-classes", json=GPU_CLASS).raise_for_status()
        client.post("/v1/admin/tiers", json=TIER_BODY).raise_for_status()
        symbol = client.get("/v1/instruments").json()["data"][0]["symbol"]
        account = client.post("/v1/admin/accounts", json={"name": "reader"}).json()
        deposit = {"amount": "1000000"}
        client.post(f"/v1/admin/accounts/{account['id']}/deposits", json=deposit)
    return {"key": account["api_key"], "symbol": symbol}


def test_a_socket_that_does_not_read_is_closed_when_its_buffer_fills(server: Running) -> None:
    """The client asks for 4,000 order updates and results and reads none of them (its
    receive buffer is a few kilobytes): once the server has 256 KiB unsent for it, it
    drops them, and the client, reading at last, finds a too_slow error and a 1013
    close after what it had been sent."""
    trader = _trader(server)
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect((server.host, server.port))
    headers = {"Authorization": f"Bearer {trader['key']}"}
    order = {"instrument": trader["symbol"], "side": "buy", "price": "19.5", "quantity": "0.1"}
    with connect(
        server.ws, sock=sock, additional_headers=headers, max_size=None, compression=None
    ) as ws:
        ws.send(json.dumps({"op": "subscribe", "channels": ["orders"]}))
        for n in range(40):
            ws.send(json.dumps({"op": "place_batch", "id": n, "orders": [order] * 100}))
        got = []
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                got.append(json.loads(ws.recv(timeout=GUARD_S)))
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1013
    assert got[-1]["type"] == "error" and got[-1]["error"]["code"] == "too_slow"
    results = [m for m in got if m.get("type") == "result"]
    assert len(results) < 40  # the rest were dropped, not buffered
