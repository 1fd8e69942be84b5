"""A no-op FastAPI endpoint: the ceiling of the HTTP stack suanli runs on (the same
FastAPI configuration: its OpenTelemetry hooks off, as in api.app)."""

from __future__ import annotations

from fastapi import FastAPI, Request

app = FastAPI(telemetry={"tracing": False, "metrics": False, "logs": False})


@app.post("/noop")
async def noop(request: Request) -> dict[str, bool]:
    await request.body()
    return {"ok": True}
