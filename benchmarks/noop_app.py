"""No-op endpoints: the ceilings of the stack suanli runs on, with no exchange behind them.

* ``POST /noop``: a FastAPI endpoint that reads the body and answers ``{"ok": true}`` (the
  same FastAPI configuration as api.app: its OpenTelemetry hooks off). The ceiling of one
  request per order.
* ``POST /noop/batch``: decodes a batch of orders and answers one order-shaped result for
  each, encoded with msgspec as suanli's batch endpoint does. The ceiling of the HTTP
  stack for batch entry.
* ``/noop/ws``: a WebSocket that answers every ``place`` message with one order-shaped
  ``result`` message, and every ``place_batch`` with one result of as many orders, in
  order, as /v1/ws does. The ceiling of the WebSocket stack (and of the benchmark's
  client) for order entry over the socket.
"""

from __future__ import annotations

from typing import Any

import msgspec
from fastapi import FastAPI, Request, Response, WebSocket, WebSocketDisconnect

app = FastAPI(telemetry={"tracing": False, "metrics": False, "logs": False})

_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder().decode

#: What suanli answers for a resting limit order (api.views.order_view), field for field.
ORDER: dict[str, Any] = {
    "id": 1,
    "client_order_id": None,
    "instrument": "FP16-H-20261122T01",
    "side": "buy",
    "type": "limit",
    "price": "19.90",
    "protection_price": None,
    "quantity": "0.1",
    "filled_quantity": "0",
    "remaining_quantity": "0.1",
    "average_price": None,
    "status": "open",
    "time_in_force": "gtc",
    "expire_time": None,
    "post_only": False,
    "stp": "cancel_newest",
    "created_at": "2026-11-22T00:00:00Z",
    "updated_at": "2026-11-22T00:00:00Z",
    "fills": [],
}


@app.post("/noop")
async def noop(request: Request) -> dict[str, bool]:
    await request.body()
    return {"ok": True}


@app.post("/noop/batch")
async def noop_batch(request: Request) -> Response:
    orders = _decode(await request.body())["orders"]
    content = _encode({"results": [{**ORDER, "id": n} for n in range(len(orders))]})
    return Response(content, status_code=201, media_type="application/json")


@app.websocket("/noop/ws")
async def noop_ws(ws: WebSocket) -> None:
    await ws.accept()
    try:
        while True:
            msg = _decode(await ws.receive_text())
            if msg.get("op") == "place_batch":
                n = len(msg["orders"])
                result: Any = {"results": [{**ORDER, "id": k} for k in range(n)]}
            else:
                result = ORDER
            reply = {"type": "result", "id": msg.get("id"), "result": result}
            await ws.send_text(_encode(reply).decode())
    except WebSocketDisconnect:
        pass
