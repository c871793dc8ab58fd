"""Open Inference Protocol (V2) routes: model metadata, readiness and ``infer``.

Each model route also answers under ``/versions/{version}``, or picks a version
with ``?version=N`` or ``?alias=A`` like the other protocols. ``infer`` takes JSON
or the binary tensor extension (``Inference-Header-Content-Length``); its body is
parsed only once the key was found allowed to use the model. ``parameters``
``explain``, ``reasons`` and ``counterfactual`` add explanation outputs. The server
routes (``/v2``, health, the model repository) are :mod:`.server`'s.
"""

from __future__ import annotations

import numpy as np
import orjson

from finmaas.config import Settings
from finmaas.errors import Invalid
from finmaas.security.policy import Principal
from finmaas.serving.pipeline import DataPlane, ExplainAsk, InferenceCall, Selector
from finmaas.serving.pool import LoadedModel
from finmaas.serving.protocols import v2
from finmaas.serving.routes.base import Handler, Params, caller, selector_of
from finmaas.web.http import Request, Response, json_response, require_json
from finmaas.web.routing import Route

BINARY = b"application/octet-stream"


def routes(plane: DataPlane, settings: Settings) -> list[Route[Handler]]:
    handlers = V2Handlers(plane, settings.max_request_rows)
    table: list[Route[Handler]] = []
    for base in ("/v2/models/{name}", "/v2/models/{name}/versions/{version}"):
        table += [
            Route("GET", base, handlers.metadata, verb="metadata", summary="model metadata"),
            Route("GET", f"{base}/ready", handlers.ready, verb="metadata", summary="readiness"),
            Route("POST", f"{base}/infer", handlers.infer, verb="predict", summary="inference"),
        ]
    return table


class V2Handlers:
    def __init__(self, plane: DataPlane, max_rows: int) -> None:
        self.plane = plane
        self.max_rows = max_rows

    async def metadata(
        self, request: Request, principal: Principal | None, params: Params
    ) -> Response:
        name = params["name"]
        loaded = await self.plane.model(
            caller(principal), name, _selector(request, params), "metadata"
        )
        servable = await self.plane.pool.servable_versions(name)
        versions = [str(v) for v in servable.get(name, [])]
        platform = f"finmaas_{loaded.version.artifact_format}"
        return json_response(v2.model_metadata(name, versions, platform, loaded.signature))

    async def ready(
        self, request: Request, principal: Principal | None, params: Params
    ) -> Response:
        name = params["name"]
        loaded = await self.plane.model(
            caller(principal), name, _selector(request, params), "metadata"
        )
        return json_response({"name": name, "version": str(loaded.number), "ready": True})

    async def infer(
        self, request: Request, principal: Principal | None, params: Params
    ) -> Response:
        principal = caller(principal)
        selector = _selector(request, params)
        header = request.header(b"inference-header-content-length")
        if header is None:
            require_json(request)
            header_length = None
        else:
            if not header.isdigit():
                raise Invalid("Inference-Header-Content-Length must be a number of bytes")
            header_length = int(header)
        name = params["name"]
        codec = V2Codec(request.body, header_length, self.max_rows)
        call = InferenceCall(
            principal, name, selector, ("predict",), codec, request.header(b"x-subject-id")
        )
        done = await self.plane.infer(call)
        loaded, parsed = done.model, codec.parsed
        assert parsed is not None  # parsed by the pipeline's explain step
        outputs = loaded.rule.outputs(done.scores)
        if done.explanations is not None:
            outputs = {**outputs, **loaded.explainer.tensors(done.explanations)}
            if done.counterfactuals is not None:
                texts = np.empty(len(done.counterfactuals), dtype=object)
                texts[:] = [orjson.dumps(item).decode() for item in done.counterfactuals]
                outputs["counterfactual"] = texts
        body, json_length = v2.encode_v2_response(name, str(loaded.number), parsed, outputs)
        if json_length is None:
            return Response(200, body)
        return Response(
            200, body, BINARY, [(b"inference-header-content-length", str(json_length).encode())]
        )


class V2Codec:
    """Parses the body when the pipeline asks what it wants (after the key was allowed
    the model), then decodes its tensors against the version's signature."""

    __slots__ = ("body", "header_length", "max_rows", "parsed")

    def __init__(self, body: bytes, header_length: int | None, max_rows: int) -> None:
        self.body = body
        self.header_length = header_length
        self.max_rows = max_rows
        self.parsed: v2.V2Request | None = None

    def explain(self) -> ExplainAsk | None:
        self.parsed = v2.parse_v2_request(self.body, self.header_length)
        explain, reasons, counterfactual = v2.explain_parameters(self.parsed)
        return ExplainAsk(reasons, counterfactual) if explain else None

    def rows(self, loaded: LoadedModel) -> np.ndarray:
        assert self.parsed is not None
        return v2.tensors_to_array(self.parsed, loaded.signature, loaded.encoder, self.max_rows)


def _selector(request: Request, params: Params) -> Selector:
    """The version asked for: the path's ``/versions/{version}``, else ``?version=N``
    or ``?alias=A`` as on every other protocol, else ``production``."""
    version = params.get("version")
    if version is None:
        return selector_of(request)
    alias = request.query.get("alias") if request.query_string else None
    return Selector.parse(version, alias)
