"""The web view at ``/``: one static page, no build step; it reads the public API and the
WebSocket from the browser."""

from __future__ import annotations

from importlib import resources

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

router = APIRouter(include_in_schema=False)


@router.get("/", response_class=HTMLResponse)
async def index() -> HTMLResponse:
    page = resources.files("api.web").joinpath("index.html").read_text(encoding="utf-8")
    return HTMLResponse(page)
