"""A no-op FastAPI endpoint: the ceiling of the HTTP stack suanli runs on."""

from __future__ import annotations

from fastapi import FastAPI, Request

app = FastAPI()


@app.post("/noop")
async def noop(request: Request) -> dict[str, bool]:
    await request.body()
    return {"ok": True}
