"""The labelling service: the page and its three calls, over one ``LabelSession``.

Reuses the service room's error shape and body bound (``engine.serve.app``) and runs
under the same ``ServerThread``. Handlers are plain functions: FastAPI runs them in
its thread pool, so a pick that waits for the scorer blocks no other request.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from engine.errors import E_INPUT, TagsmithError
from engine.label.page import render_label_page
from engine.label.session import LabelSession
from engine.serve.app import BodyLimit, error_response


class DecisionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    k: int = Field(description="the slot decided (as shown)")
    tags: list[str] = Field(default_factory=list, description="exact names, first = main tag")
    seconds: float = Field(default=0.0, description="time from the item painted to the decision")
    skipped: bool = False


def create_label_app(session: LabelSession, title: str = "") -> FastAPI:
    app = FastAPI(title="tagsmith label", docs_url=None, redoc_url=None, openapi_url=None)
    app.add_middleware(BodyLimit, limit=1 << 20)
    page = render_label_page(session.taxonomy.names, session.settings.max_tags, session.start, session.store.path,
                             title or Path(session.store.path).name)

    @app.exception_handler(TagsmithError)
    async def on_error(_: Request, exc: TagsmithError) -> JSONResponse:
        return error_response(exc.code, exc.detail)

    @app.exception_handler(RequestValidationError)
    async def on_invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(x) for x in first.get("loc", ()) if x != "body")
        return error_response(E_INPUT, f"{where}: {first.get('msg', 'invalid request')}")

    @app.get("/", response_class=HTMLResponse)
    def index() -> HTMLResponse:
        return HTMLResponse(page)

    @app.get("/api/item/{k}")
    def item(k: int) -> dict[str, Any]:
        return session.item(k)

    @app.post("/api/decide")
    def decide(d: DecisionIn) -> dict[str, Any]:
        return session.decide(d.k, d.tags, d.seconds, d.skipped)

    @app.get("/api/progress")
    def progress() -> dict[str, Any]:
        return session.progress()

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app
