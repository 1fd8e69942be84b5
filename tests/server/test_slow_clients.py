"""Slow and greedy HTTP clients against a real server (``suanli serve``): requests whose
headers or body never complete are answered 408 and closed once their deadline passes,
while other clients are served; connections beyond the cap are answered 503 at once;
headers beyond the limit get 431, whether they end or not."""

from __future__ import annotations

import select
import socket
import time
from pathlib import Path

import httpx
import pytest

from tests.server.running import Running, running_server

pytestmark = pytest.mark.timeout(180)

GUARD_S = 60  # how long a socket read may block before the test gives up (a hang guard)


def answer_of(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection."""
    sock.settimeout(GUARD_S)
    chunks = []
    try:
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    except TimeoutError:
        pytest.fail("the server held the connection open: " + repr(b"".join(chunks)[:200]))
    finally:
        sock.close()
    return b"".join(chunks)


def one_response(sock: socket.socket) -> bytes:
    """One whole response on a connection that stays open (its body by Content-Length)."""
    sock.settimeout(GUARD_S)
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
    while len(body) < length:
        body += sock.recv(65536)
    return head + b"\r\n\r\n" + body


def status_of(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/1.1 ") else 0


HEALTH = b"GET /v1/health HTTP/1.1\r\nHost: suanli\r\n\r\n"
HALF_SENT = [
    b"",  # connects, sends nothing
    b"GET /v1/health HTTP/1.1\r\nHost: suanli\r\nX-Slow: ",  # headers that never end
    b"GET /v1/hea",  # a request line that never ends
    # bodies that never end, to the lean order entry and to a FastAPI route
    b"POST /v1/orders HTTP/1.1\r\nHost: suanli\r\nContent-Type: application/json\r\n"
    b'Content-Length: 200\r\nAuthorization: Bearer sk_x\r\n\r\n{"instrument": ',
    b"POST /v1/sites HTTP/1.1\r\nHost: suanli\r\nContent-Type: application/json\r\n"
    b'Content-Length: 200\r\nAuthorization: Bearer sk_x\r\n\r\n{"name": ',
]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Running:
    directory = tmp_path_factory.mktemp("slow")
    with running_server(directory, {"SUANLI_HTTP_REQUEST_TIMEOUT_S": "1"}) as running:
        yield running  # type: ignore[misc]


def test_half_sent_requests_are_answered_408_and_closed_while_others_are_served(
    server: Running,
) -> None:
    slow = []
    for n in range(60):
        sock = server.connect()
        sock.sendall(HALF_SENT[n % len(HALF_SENT)])
        slow.append(sock)
    # a normal client is served while they hang, on a new connection and on a kept one
    with httpx.Client(base_url=server.base) as client:
        for _ in range(3):
            assert client.get("/v1/health").status_code == 200
    for sock in slow:
        answer = answer_of(sock)
        assert status_of(answer) == 408, answer[:200]
        assert b'"code":"request_timeout"' in answer
    assert httpx.get(server.base + "/v1/health").status_code == 200
    log = server.log.read_text()
    assert "Traceback" not in log and "Exception in ASGI application" not in log, log[-3000:]


def test_a_keep_alive_connection_gets_a_deadline_for_each_request(server: Running) -> None:
    sock = server.connect()
    sock.sendall(HEALTH)
    assert status_of(one_response(sock)) == 200
    sock.sendall(b"GET /v1/health HTTP/1.1\r\nHost: suanli\r\n")  # the next never ends
    assert status_of(answer_of(sock)) == 408


def test_headers_beyond_the_limit_get_431(server: Running) -> None:
    """The default limit is 32 KiB of request line and headers."""
    pad = b"a" * 8_000

    def head(headers: int) -> bytes:
        pads = b"".join(b"X-Pad-%d: %s\r\n" % (i, pad) for i in range(headers))
        return b"GET /v1/health HTTP/1.1\r\nHost: suanli\r\nConnection: close\r\n" + pads

    sock = server.connect()
    sock.sendall(head(3) + b"\r\n")
    assert status_of(answer_of(sock)) == 200
    # too large and complete, in one piece
    sock = server.connect()
    sock.sendall(head(6) + b"\r\n")
    answer = answer_of(sock)
    assert status_of(answer) == 431 and b'"code":"headers_too_large"' in answer
    # too large and never ending, in many pieces (the old behaviour: held and buffered)
    sock = server.connect()
    sock.sendall(b"GET /v1/health HTTP/1.1\r\nHost: suanli\r\nX-Pad: ")
    for _ in range(2_000):  # 16 MB, unless the server answers first
        if select.select([sock], [], [], 0)[0]:
            break
        try:
            sock.sendall(pad)
        except OSError:  # closed after the answer
            break
    assert status_of(answer_of(sock)) == 431


def test_connections_beyond_the_cap_get_503_at_once(tmp_path: Path) -> None:
    env = {
        "SUANLI_HTTP_CONNECTIONS_MAX": "12",
        "SUANLI_HTTP_REQUEST_TIMEOUT_S": "600",
        "SUANLI_HTTP_KEEP_ALIVE_S": "600",
    }
    with running_server(tmp_path, env) as server:
        held = [server.connect() for _ in range(12)]
        for sock in held:  # wait until the server has each (it answers on each)
            sock.sendall(HEALTH)
            assert status_of(one_response(sock)) == 200
        for _ in range(3):  # beyond the cap: answered on arrival and closed
            answer = answer_of(server.connect())
            assert status_of(answer) == 503 and b'"code":"server_busy"' in answer
        for _ in range(3):  # with a request already sent, the close may reset it first
            sock = server.connect()
            sock.sendall(HEALTH)
            try:
                answer = answer_of(sock)
            except ConnectionResetError:
                continue
            assert status_of(answer) == 503 and b'"code":"server_busy"' in answer
        for sock in held[:3]:
            sock.close()
        # room again, once the server has seen the closes
        with httpx.Client(base_url=server.base) as client:
            statuses = []
            for _ in range(400):
                statuses.append(client.get("/v1/health").status_code)
                if statuses[-1] == 200:
                    break
                time.sleep(0.02)
            assert statuses[-1] == 200 and set(statuses) <= {200, 503}
        for sock in held[3:]:
            sock.close()
