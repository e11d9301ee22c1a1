"""The HTTP service: FastAPI routes over one ``Tagger`` and its dynamic batcher.

Every answer is made by the same code as ``tagsmith tag`` (``Tagger.propose`` and
``Tagger.decide``) and written with ``TagResult.to_json``, so a service answer and a
CLI answer for the same item and settings are the same bytes. Every error is a 4xx or
5xx with ``{"code": "E###", "message": ...}``, the codes the CLI prints.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Union

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST
from pydantic import BaseModel, ConfigDict, Field

from engine.api import Tagger, TagResult
from engine.errors import (E_BUSY, E_EMPTY_TEXT, E_ENCODING, E_INPUT, E_INTERNAL, E_MAX_TAGS, E_TAXONOMY, E_TOO_LARGE,
                           TagsmithError)
from engine.request import parse_request
from engine.serve.batcher import DynamicBatcher
from engine.serve.metrics import ServiceMetrics
from engine.taxonomy import Taxonomy

TagList = list[Union[str, dict[str, Any]]]


@dataclass(frozen=True)
class ServiceSettings:
    """Bounds and batching of one service (``tagsmith serve`` options)."""

    max_batch: int = 32  # items decoded together
    max_wait_ms: float = 10.0  # how long a batch waits to fill
    max_body_bytes: int = 4 << 20  # request body bound (413 E108 beyond)
    max_call_items: int = 256  # items in one /v1/tag/batch call
    max_tags_limit: int = 10  # the largest N a request may ask for
    max_taxonomy_tags: int = 5000  # tags in one request's own list
    taxonomies_kept: int = 32  # request tag lists kept compiled (least recently used dropped)
    max_queue: int = 4096  # items queued before 503 E601
    lexicon_workers: int = 0  # lexicon processes (0: in the batcher thread)


class TagIn(BaseModel):
    """One item to tag."""

    model_config = ConfigDict(extra="forbid")
    id: Union[str, int, None] = Field(default=None, description="echoed in the answer (as a string)")
    text: str = Field(description="the project's description (README)")
    taxonomy: TagList | None = Field(default=None, description="allowed tags (names, or {id, name}); default: the server's list")
    max_tags: int | None = Field(default=None, description="at most N tags (default 3)")
    explain: bool = Field(default=False, description="also return the explanation: evidence, model probabilities, why-not")


class BatchItem(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: Union[str, int, None] = None
    text: str


class BatchIn(BaseModel):
    """Up to ``max_call_items`` items sharing one tag list and N."""

    model_config = ConfigDict(extra="forbid")
    items: list[BatchItem]
    taxonomy: TagList | None = None
    max_tags: int | None = None


class TagOut(BaseModel):
    id: str | None
    tags: list[str]
    explanation: dict[str, Any] | None = None


class ErrorOut(BaseModel):
    code: str
    message: str


class BatchOut(BaseModel):
    results: list[dict[str, Any]] = Field(description="per item, in order: {id, tags} or {id, error: {code, message}}")


class PageIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str
    raw_request: bool = False
    max_tags: int | None = None
    taxonomy: TagList | None = None


_STATUS = {E_BUSY: 503, E_TOO_LARGE: 413, E_INTERNAL: 500}
_ERRORS = {400: {"model": ErrorOut}, 413: {"model": ErrorOut}, 503: {"model": ErrorOut}}


def error_response(code: str, message: str, status: int | None = None) -> JSONResponse:
    return JSONResponse({"code": code, "message": message}, status_code=status or _STATUS.get(code, 400))


def _validation_code(err: dict[str, Any]) -> str:
    """The CLI's code for a schema error, from the field at fault."""
    loc = [str(x) for x in err.get("loc", ())]
    if err.get("type") in ("json_invalid", "extra_forbidden", "model_attributes_type", "dict_type"):
        return E_INPUT
    if "max_tags" in loc:
        return E_MAX_TAGS
    if "taxonomy" in loc:
        return E_TAXONOMY
    if "text" in loc:
        return E_EMPTY_TEXT
    return E_INPUT


class _BodyTooLarge(Exception):
    pass


class BodyLimit:
    """ASGI middleware: a body over ``limit`` bytes gets 413 E108, whether it announces
    its length or streams it chunked; nothing past the bound is buffered."""

    def __init__(self, app: Any, limit: int, on_reject: Any = None) -> None:
        self.app, self.limit, self.on_reject = app, limit, on_reject

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        too_big = error_response(E_TOO_LARGE, f"request body over {self.limit:,} bytes (--max-body-bytes)")

        async def reject() -> None:
            if self.on_reject is not None:
                self.on_reject(E_TOO_LARGE)
            await too_big(scope, receive, send)

        for k, v in scope.get("headers", ()):
            if k == b"content-length" and v.isdigit() and int(v) > self.limit:
                return await reject()
        seen, over, started = 0, False, False

        async def counted() -> dict:
            nonlocal seen, over
            msg = await receive()
            if msg["type"] == "http.request":
                seen += len(msg.get("body", b""))
                if seen > self.limit:
                    over = True  # the app sees a failed read; its answer is replaced by ours
                    raise _BodyTooLarge
            return msg

        async def watched(msg: dict) -> None:
            nonlocal started
            if over:
                return
            started = started or msg["type"] == "http.response.start"
            await send(msg)

        try:
            await self.app(scope, counted, watched)
        except _BodyTooLarge:
            pass
        if over and not started:
            await reject()


class Service:
    """State of one service: the tagger, its batcher, tag-list cache and metrics."""

    def __init__(self, tagger: Tagger, taxonomy: Taxonomy | None = None, settings: ServiceSettings | None = None) -> None:
        self.tagger = tagger
        self.taxonomy = taxonomy
        self.settings = settings or ServiceSettings()
        self.metrics = ServiceMetrics()
        self.batcher = DynamicBatcher(tagger, self.settings.max_batch, self.settings.max_wait_ms / 1000, self.settings.max_queue,
                                      on_batch=self.metrics.on_batch, lexicon_workers=self.settings.lexicon_workers)
        self.batcher.warm_taxonomy = taxonomy
        self.ready = threading.Event()
        self.warmup_error: str | None = None
        self._taxonomies: OrderedDict[str, Taxonomy] = OrderedDict()
        self._tax_lock = threading.Lock()

    # -- warm-up: load the model and compile the server's list before /readyz says so
    def warm_up(self) -> None:
        try:
            if self.taxonomy is not None:
                self.tagger.tag("warm-up", id="warm-up", taxonomy=self.taxonomy, max_tags=3)
            elif self.tagger.mode != "rules":
                _ = self.tagger.lm
            self.ready.set()
        except Exception as exc:  # noqa: BLE001  (reported by /readyz; the process stays up)
            self.warmup_error = str(exc)

    # -- inputs ------------------------------------------------------------------
    def taxonomy_for(self, items: TagList | None) -> Taxonomy:
        """The request's own list (validated once, compiled once, kept while in use) or
        the server's."""
        if items is None:
            if self.taxonomy is None:
                raise TagsmithError(E_TAXONOMY, "no taxonomy: send one, or start the server with --taxonomy", field="taxonomy")
            return self.taxonomy
        if len(items) > self.settings.max_taxonomy_tags:
            raise TagsmithError(E_TOO_LARGE, f"{len(items)} tags in the list, at most {self.settings.max_taxonomy_tags}", field="taxonomy")
        key = hashlib.sha256(json.dumps(items, ensure_ascii=False, sort_keys=True).encode()).hexdigest()
        with self._tax_lock:
            tax = self._taxonomies.get(key)
            if tax is not None:
                self._taxonomies.move_to_end(key)
                return tax
        tax = Taxonomy.from_names(items, source="taxonomy")
        with self._tax_lock:
            self._taxonomies[key] = tax
            while len(self._taxonomies) > self.settings.taxonomies_kept:
                _, old = self._taxonomies.popitem(last=False)
                if self.taxonomy is None or old.fingerprint() != self.taxonomy.fingerprint():
                    self.batcher.forget(old)
        return tax

    def max_tags(self, n: int | None) -> int:
        n = 3 if n is None else n
        if not 1 <= n <= self.settings.max_tags_limit:
            raise TagsmithError(E_MAX_TAGS, f"must be between 1 and {self.settings.max_tags_limit}, got {n}", field="max_tags")
        return n

    def raw_job(self, raw: str) -> tuple[dict[str, Any], Taxonomy, int]:
        """A raw request (the requester's prompt format) as (record, tag list, N)."""
        req = parse_request(raw, source="<request>")
        return self.record(req.id, req.text, req.skeleton), req.taxonomy, self.max_tags(req.max_tags)

    @staticmethod
    def record(rid: Any, text: str, skeleton: dict[str, Any] | None = None) -> dict[str, Any]:
        if not text.strip():
            raise TagsmithError(E_EMPTY_TEXT, "the project description is empty", field="text")
        rid = None if rid is None else str(rid)
        return {"id": rid, "text": text, "skeleton": skeleton if skeleton is not None else {"id": rid, "tags": []}}


def _error_of(exc: BaseException) -> tuple[str, str]:
    if isinstance(exc, TagsmithError):
        return exc.code, exc.detail
    return E_INTERNAL, f"internal error: {type(exc).__name__}: {exc}"


def _answer(result: TagResult, explain: bool) -> Response:
    if not explain:
        return Response(result.to_json(), media_type="application/json")
    body = result.to_dict()
    body["explanation"] = result.explanation.to_dict()
    return Response(json.dumps(body, ensure_ascii=False, separators=(",", ":")), media_type="application/json")


def _docs(app: FastAPI) -> None:
    """``/docs`` from the Swagger UI files installed with the service (swagger-ui-bundle),
    not from a CDN: the docs work on an offline host too."""
    from fastapi.openapi.docs import get_swagger_ui_html
    from fastapi.staticfiles import StaticFiles
    from swagger_ui_bundle import swagger_ui_path

    app.mount("/docs-assets", StaticFiles(directory=swagger_ui_path), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url="/openapi.json", title="tagsmith API", swagger_js_url="/docs-assets/swagger-ui-bundle.js",
                                   swagger_css_url="/docs-assets/swagger-ui.css", swagger_favicon_url="/docs-assets/favicon-32x32.png")


def create_app(service: Service) -> FastAPI:
    """The FastAPI app of a ``Service``; the batcher runs while the app's lifespan does."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        service.batcher.start(warmup=service.warm_up)
        try:
            yield
        finally:
            # uvicorn has stopped taking requests and waited for those in flight (SIGTERM
            # drains); anything still queued is answered before the thread stops.
            service.batcher.close()

    app = FastAPI(title="tagsmith", version="0.1.0", lifespan=lifespan, docs_url=None, redoc_url=None,
                  description="Tags software projects from their descriptions: at most N tags, only from the given list, "
                              "names exactly as listed.")
    app.state.service = service
    m = service.metrics

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        err = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(x) for x in err.get("loc", ()) if x != "body")
        code = _validation_code(err)
        m.errors.labels(code).inc()
        if err.get("type") == "json_invalid":
            return error_response(code, f"malformed JSON body: {err.get('ctx', {}).get('error', err.get('msg'))}")
        return error_response(code, f"{where + ': ' if where else 'the body must be a JSON object: '}{err.get('msg', 'invalid request')}")

    @app.exception_handler(TagsmithError)
    async def _tagsmith(request: Request, exc: TagsmithError) -> JSONResponse:
        code, message = _error_of(exc)
        m.errors.labels(code).inc()
        return error_response(code, message)

    @app.exception_handler(Exception)
    async def _internal(request: Request, exc: Exception) -> JSONResponse:
        code, message = _error_of(exc)
        m.errors.labels(code).inc()
        return error_response(code, message, 500)

    @app.middleware("http")
    async def _measure(request: Request, call_next: Any) -> Response:
        t0 = time.perf_counter()
        response = await call_next(request)
        endpoint = request.url.path
        if endpoint.startswith("/v1/") or endpoint == "/ui/tag":
            m.latency.labels(endpoint).observe(time.perf_counter() - t0)
            m.requests.labels(endpoint, str(response.status_code)).inc()
        return response

    app.add_middleware(BodyLimit, limit=service.settings.max_body_bytes, on_reject=lambda code: m.errors.labels(code).inc())

    @app.post("/v1/tag", response_model=TagOut, responses=_ERRORS, summary="Tag one description")
    async def tag(item: TagIn) -> Response:
        tax = service.taxonomy_for(item.taxonomy)
        n = service.max_tags(item.max_tags)
        result = await service.batcher.submit(service.record(item.id, item.text), tax, n)
        m.items.labels("/v1/tag").inc()
        return _answer(result, item.explain)

    @app.post("/v1/request", responses=_ERRORS, summary="Answer a raw request (the requester's prompt format), as `tagsmith tag` does",
              openapi_extra={"requestBody": {"content": {"text/plain": {"schema": {"type": "string"}}}, "required": True}})
    async def raw_request(request: Request) -> Response:
        body = await request.body()
        try:
            raw = body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise TagsmithError(E_ENCODING, f"not UTF-8 (byte {exc.start})") from None
        result = await service.batcher.submit(*service.raw_job(raw))
        m.items.labels("/v1/request").inc()
        return Response(result.to_json(), media_type="application/json")

    @app.post("/v1/tag/batch", response_model=BatchOut, responses=_ERRORS, summary="Tag up to max_call_items descriptions")
    async def tag_batch(batch: BatchIn) -> Response:
        import asyncio

        if len(batch.items) > service.settings.max_call_items:
            raise TagsmithError(E_TOO_LARGE, f"{len(batch.items)} items in one call, at most {service.settings.max_call_items}", field="items")
        tax = service.taxonomy_for(batch.taxonomy)
        n = service.max_tags(batch.max_tags)
        out: list[Any] = [None] * len(batch.items)
        good, records = [], []
        for i, it in enumerate(batch.items):  # a bad item is answered with its error; the others are tagged
            try:
                records.append(service.record(it.id, it.text))
                good.append(i)
            except TagsmithError as exc:
                out[i] = {"id": None if it.id is None else str(it.id), "error": dict(zip(("code", "message"), _error_of(exc)))}
                m.errors.labels(exc.code).inc()
        futures = service.batcher.submit_many(records, tax, n)
        for i, rec, res in zip(good, records, await asyncio.gather(*futures, return_exceptions=True)):
            if isinstance(res, BaseException):
                code, message = _error_of(res)
                m.errors.labels(code).inc()
                out[i] = {"id": rec["id"], "error": {"code": code, "message": message}}
            else:
                out[i] = res.to_dict()
        m.items.labels("/v1/tag/batch").inc(len(good))
        return Response(json.dumps({"results": out}, ensure_ascii=False, separators=(",", ":")), media_type="application/json")

    @app.get("/healthz", summary="The process is up")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", summary="The model is loaded and the server's constraint compiled", responses={503: {"model": ErrorOut}})
    async def readyz() -> Response:
        if service.ready.is_set():
            return JSONResponse({"status": "ready", "mode": service.tagger.mode})
        if service.warmup_error:
            return error_response(E_INTERNAL, f"warm-up failed: {service.warmup_error}", 503)
        return JSONResponse({"status": "starting"}, status_code=503)

    @app.get("/metrics", summary="Prometheus metrics")
    async def metrics() -> Response:
        m.queued.set(service.batcher.pending)
        return Response(m.render(), media_type=CONTENT_TYPE_LATEST)

    _docs(app)

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def page() -> HTMLResponse:
        from engine.serve.page import render_page

        return HTMLResponse(render_page(service.taxonomy, service.settings.max_tags_limit))

    @app.post("/ui/tag", include_in_schema=False)
    async def page_tag(item: PageIn) -> Response:
        from engine.report.batch import report_item
        from engine.report.html import render_item

        if item.raw_request:
            rec, tax, n = service.raw_job(item.text)
        else:
            rec, tax, n = service.record("page", item.text), service.taxonomy_for(item.taxonomy), service.max_tags(item.max_tags)
        result = await service.batcher.submit(rec, tax, n)
        m.items.labels("/ui/tag").inc()
        exp = result.explanation.to_dict()
        drawn = render_item(report_item(result.id or "-", result.tags, exp, rec["text"]))
        return JSONResponse({"answer": result.to_json(), "tags": result.tags, "html": drawn})

    return app

