"""``create_app(settings)``: the ASGI application, and the only place parts are wired.

The lifespan opens the registry, the access guard and the model pool; on
shutdown it closes the pool first (every batcher finishes what it has queued),
then the guard (the usage counters are flushed), then the registry.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from datetime import timedelta
from typing import Protocol

from finmaas.api.control import ControlPlane
from finmaas.background import HeapTrimmer, fix_mmap_threshold, limit_heap_arenas
from finmaas.config import Settings
from finmaas.errors import FinmaasError
from finmaas.monitoring.decision_records import DecisionStore, DecisionWriter
from finmaas.monitoring.exporter import Exporter
from finmaas.monitoring.metrics import BatchTimings, ServiceMetrics, SharedSnapshots
from finmaas.monitoring.predictions import PredictionLog
from finmaas.monitoring.pseudonyms import pseudonym_key
from finmaas.monitoring.recorder import DriftRecorder
from finmaas.monitoring.store import DriftStore
from finmaas.registry import ArtifactStore, LocalArtifactStore, Registry
from finmaas.security.guard import Guard
from finmaas.security.policy import Principal
from finmaas.serving.batching import AdaptiveBatcher, Predict, Served
from finmaas.serving.pipeline import DataPlane
from finmaas.serving.pool import ModelPool
from finmaas.serving.router import Router, answered, error_response, failure, protocol_of
from finmaas.serving.unloaded import UnloadedModels
from finmaas.web import cors as cors_headers
from finmaas.web.access_log import AccessLog, RequestTrace, access_entry, new_trace
from finmaas.web.http import (
    BodyTooLarge,
    Receive,
    Request,
    Response,
    Scope,
    Send,
    check_declared_length,
    read_request,
    send_response,
    unread_body_headers,
)
from finmaas.web.uploads import (
    SPOOL,
    UploadRequest,
    UploadSlots,
    is_multipart,
    spool_folder,
    spool_form,
    sweep_spool,
)

log = logging.getLogger("finmaas.serving")


class _Closes(Protocol):
    """What shutdown stops: a part of the app with an async ``close``."""

    async def close(self) -> None: ...


class FinmaasApp:
    """ASGI app: lifespan events plus HTTP requests routed by :class:`Router`."""

    def __init__(
        self,
        settings: Settings,
        *,
        registry: Registry | None = None,
        store: ArtifactStore | None = None,
    ) -> None:
        self.settings = settings
        self._registry = registry
        self._store = store
        self.pool: ModelPool | None = None
        self.guard: Guard | None = None
        self.router: Router | None = None
        self.control: ControlPlane | None = None
        self.uploads = UploadSlots(settings.max_concurrent_uploads)
        self.drift: DriftRecorder | None = None
        self.access: AccessLog | None = None
        self.metrics = ServiceMetrics()
        self.exporter: Exporter | None = None
        self.decisions: DecisionWriter | None = None
        self.predictions: PredictionLog | None = None
        self.trimmer = HeapTrimmer()
        self._origins = settings.allowed_origins

    def _batcher(
        self,
        predict: Predict,
        *,
        timings: BatchTimings | None = None,
        served: Served | None = None,
    ) -> AdaptiveBatcher:
        return AdaptiveBatcher(
            predict,
            max_batch_rows=self.settings.max_batch_rows,
            max_wait=self.settings.max_batch_wait_us / 1e6,
            max_queue_rows=self.settings.max_queue_rows,
            timings=timings,
            served=served,
            inline_below=self.settings.max_inline_call_us / 1e6,
        )

    async def startup(self) -> None:
        settings = self.settings
        limit_heap_arenas(settings.heap_arenas)  # before the first worker thread starts
        fix_mmap_threshold()
        if self._registry is None:
            self._registry = await asyncio.to_thread(Registry.open, settings)
        store = self._store or LocalArtifactStore(
            settings.resolved_artifacts_dir, max_bytes=settings.max_artifact_bytes
        )
        self.pool = ModelPool(
            self._registry,
            store,
            batcher_factory=self._batcher,
            count_drift=settings.count_drift,
            max_memory=settings.max_model_memory,
            allow_pickle=settings.allow_pickle,
            refresh_interval=settings.alias_refresh_interval,
            preload=settings.preload,
            metrics=self.metrics,
            unloaded=UnloadedModels(
                settings.metrics_dir / "unloaded.json" if settings.metrics_dir else None
            ),
        )
        await self.pool.start()
        self.guard = Guard(settings, self._registry, workers=settings.workers)
        await self.guard.start()
        drift_store = DriftStore(self._registry)
        self.drift = DriftRecorder(self.pool.loaded, drift_store, settings.usage_flush_interval)
        await self.drift.start()
        decisions = self.decisions = DecisionWriter(
            DecisionStore(self._registry),
            max_pending=settings.max_pending_decisions,
            retention=timedelta(days=settings.decision_retention_days),
            now=self._registry.now,
        )
        await self.decisions.start()
        key = await asyncio.to_thread(pseudonym_key, settings.home)
        predictions = self.predictions = PredictionLog(
            settings.home / "predictions",
            key=key,
            masking=settings.pii_masking,
            max_bytes=settings.prediction_log_max_bytes,
            file_format=settings.prediction_log_format,
            rotate_seconds=settings.prediction_log_rotate_seconds,
            retention_days=settings.prediction_log_retention_days,
            counted=self.metrics.log_rows,
        )
        await self.predictions.start()
        self.exporter = Exporter(
            self.metrics,
            self.pool.loaded,
            drift_store,
            policy=self.guard.monitoring,
            drift_min_rows=settings.drift_min_rows,
            shared=SharedSnapshots(settings.metrics_dir) if settings.metrics_dir else None,
            backlogs={
                "finmaas_decision_backlog": lambda: decisions.backlog,
                "finmaas_prediction_log_backlog": lambda: predictions.backlog,
            },
        )
        await self.exporter.start()
        self.access = AccessLog.of(settings.access_log)
        if self.access is not None:
            await self.access.start()
        await self.trimmer.start()
        self._announce(self.guard)
        await asyncio.to_thread(sweep_spool, settings.home / SPOOL)
        self.control = ControlPlane(self._registry, self.guard, store, settings)
        plane = DataPlane(
            self.pool,
            self.guard,
            metrics=self.metrics,
            decisions=self.decisions,
            predictions=self.predictions,
            pseudonym_key=key,
        )
        self.router = Router(plane, settings, self.exporter)
        # Everything loaded so far lives as long as the process: keep it out of the
        # cyclic GC's full collections, which otherwise stall requests for tens of ms.
        gc.collect()
        gc.freeze()

    def _announce(self, guard: Guard) -> None:
        settings = self.settings
        if settings.insecure_no_auth:
            log.warning(
                "AUTHENTICATION IS DISABLED (--insecure-no-auth): every caller is an "
                "anonymous admin. Never run this way with real data."
            )
        elif not any(key.revoked_at is None for key in guard.snapshot.keys.values()):
            log.warning("no API keys yet: create one with `finmaas keys create NAME --role admin`")
        if settings.single_approver:
            log.warning("four-eyes relaxed (--single-approver): authors may approve their versions")
        if settings.workers > 1 and not settings.redis_url:
            log.info(
                "limits are enforced per worker (1/%d of each); set FINMAAS_REDIS_URL "
                "for exact limits across workers",
                settings.workers,
            )

    async def shutdown(self) -> None:
        """Stop what startup started, in this order. A step that fails is logged and the
        next one still runs: one broken sink must not cost the usage counts or the
        decisions behind it."""
        parts: list[tuple[str, _Closes | None]] = [
            ("heap trimmer", self.trimmer),
            ("drift", self.drift),  # the last counts, while the pool still holds them
            ("model pool", self.pool),
            ("decision records", self.decisions),  # every served decision is written
            ("prediction log", self.predictions),
            ("metrics", self.exporter),  # the last snapshot, once the queues are drained
            ("keys and usage", self.guard),
            ("access log", self.access),
        ]
        for name, part in parts:
            if part is None:
                continue
            try:
                await part.close()
            except Exception:
                log.exception("shutdown: closing the %s failed", name)
        if self._registry is not None:
            self._registry.close()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await self._http(scope, receive, send)
        elif scope["type"] == "lifespan":
            await self._lifespan(receive, send)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.router is None:
            await send_response(send, error_response(503, "the server is starting"))
            return
        headers = dict(scope["headers"])
        cors: tuple[tuple[bytes, bytes], ...] = ()
        if self._origins:
            origin = headers.get(b"origin")
            if origin is not None and origin in self._origins:
                if scope["method"] == "OPTIONS":
                    preflight = Response(204, b"", b"text/plain")
                    await send_response(send, preflight, cors_headers.preflight_headers(origin))
                    return
                cors = cors_headers.response_headers(origin)
        trace = new_trace(headers)
        extra = (*cors, (b"x-request-id", trace.request_id.encode()))
        method, path = scope["method"], scope["path"]
        client = scope.get("client")
        address = client[0] if client else ""
        try:
            # The key is checked from the headers before one byte of the body is read:
            # a caller without a valid key costs its headers only.
            principal = self._authenticate(method, path, headers, trace)
            if principal is not None and path.startswith("/api/"):
                response = await self._api(scope, receive, headers, principal.at(address))
            else:
                request = await read_request(scope, receive, self.settings.max_body_bytes, headers)
                response = await self.router.handle(request, principal)
        except FinmaasError as exc:
            # Refused before or while reading the body: the rest of it is never read.
            response = failure(path, exc)
            extra = (*extra, *unread_body_headers(headers))
        except ConnectionAbortedError:
            return
        except Exception:  # e.g. a full disk while spooling an upload
            log.exception("unhandled error on %s %s", method, path[:200])
            response = error_response(500, "internal server error")
            extra = (*extra, *unread_body_headers(headers))
        await send_response(send, response, extra)
        self._done(trace, method, path, response.status)

    def _authenticate(
        self, method: str, path: str, headers: dict[bytes, bytes], trace: RequestTrace
    ) -> Principal | None:
        """The caller, from the headers alone; None on a route that needs no key."""
        assert self.router is not None
        assert self.guard is not None
        if self.router.is_public(method, path):
            return None
        principal = self.guard.authenticate(headers)
        trace.key_id = principal.key.id
        return principal

    async def _api(
        self,
        scope: Scope,
        receive: Receive,
        headers: dict[bytes, bytes],
        principal: Principal,
    ) -> Response:
        """A control-plane request. What the method, path and key tell is checked before
        the body; an upload is streamed to disk (at most ``max_concurrent_uploads`` at
        once), any other body is read whole within ``max_body_bytes``."""
        assert self.control is not None
        settings = self.settings
        method, path = scope["method"], scope["path"]
        route = await self.control.admit_body(method, path, principal)
        if route is None or not is_multipart(headers):
            try:
                request = await read_request(scope, receive, settings.max_body_bytes, headers)
            except BodyTooLarge as exc:
                if route is None:
                    raise
                raise BodyTooLarge(
                    f"{exc}; send the file as multipart/form-data, up to "
                    f"{settings.max_upload_bytes} bytes"
                ) from None
            return await self._control(request, principal)
        check_declared_length(headers, settings.max_upload_bytes)
        with self.uploads.slot(), spool_folder(settings.home / SPOOL) as folder:
            form = await spool_form(
                receive,
                headers,
                folder,
                file_parts=route.file_parts,
                field_parts=route.field_parts,
                max_bytes=settings.max_upload_bytes,
                max_field_bytes=settings.max_body_bytes,
            )
            request = UploadRequest(
                method, path, scope.get("query_string", b""), headers, b"", form
            )
            return await self._control(request, principal)

    async def _control(self, request: Request, principal: Principal) -> Response:
        """The control plane's answer, its errors written as the data plane's are."""
        assert self.control is not None
        return await answered(request, self.control(request, principal))

    def _done(self, trace: RequestTrace, method: str, path: str, status: int) -> None:
        """Count the answered request, and log it when the access log is on."""
        seconds = time.perf_counter() - trace.started
        self.metrics.observe_request(protocol_of(path), status, trace.model, trace.version, seconds)
        if self.access is not None:
            self.access.record(access_entry(trace, method, path, status, seconds))

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.startup()
                except FinmaasError as exc:
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                except Exception as exc:
                    log.exception("startup failed")
                    await send({"type": "lifespan.startup.failed", "message": repr(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return


def create_app(settings: Settings | None = None) -> FinmaasApp:
    """Build the app; ``Settings()`` (environment and defaults) when none is given."""
    return FinmaasApp(settings or Settings())
