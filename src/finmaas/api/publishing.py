"""The publish route: a model file and its fields become the next version of a model.

The file is an ``artifact`` part beside a ``metadata`` part of the fields, already
spooled to disk (or, within the small body limit, base64 in a JSON body); it is
checked and loaded like ``finmaas models push`` does, and is never a pickle: uploads
cannot run code. The table lets the change through the change gate first (a new
name makes a model of the caller's tenant).
"""

from __future__ import annotations

import asyncio
from typing import Any

from finmaas.api.bodies import PUBLISH, base64_field, form_document, upload_json_object
from finmaas.api.context import Call, Services
from finmaas.errors import Invalid
from finmaas.publish.publishing import publish_bytes, publish_file, split_target
from finmaas.registry import NewModel
from finmaas.registry.records import ModelVersion
from finmaas.runtimes import ModelFormat
from finmaas.runtimes.base import SAFE_FORMATS
from finmaas.schema import signature_from_dict
from finmaas.web.http import Response, json_response
from finmaas.web.uploads import UploadedFile, UploadRequest

PUBLISH_FIELDS = frozenset(
    {
        "artifact",
        "filename",
        "format",
        "signature",
        "metrics",
        "params",
        "tags",
        "parent_version",
        "model_card",
        "description",
        "owner",
        "reference",
        "reference_target",
        "explain_reference",
        "reason_codes",
    }
)
ENDPOINT_FIELDS = frozenset(
    {
        "endpoint",
        "check",
        "metrics",
        "tags",
        "parent_version",
        "model_card",
        "description",
        "owner",
    }
)
"""The fields of a JSON publish of an LLM endpoint (``endpoint`` instead of a file)."""
MAX_REFERENCE_ROWS = 100_000


async def publish_version(api: Services, call: Call) -> Response:
    name, request, principal = call.params["name"], call.request, call.principal
    upload: UploadedFile | None = None
    if not isinstance(request, UploadRequest):
        body = upload_json_object(request, PUBLISH_FIELDS | ENDPOINT_FIELDS)
        if "endpoint" in body:
            return await _publish_endpoint(api, call, body)
        if "check" in body:
            raise Invalid("'check' is for an 'endpoint' publish; a model file is always checked")
        data = base64_field(body, "artifact", "the model file")
    else:
        body, upload = form_document(request.form, PUBLISH, PUBLISH_FIELDS - {"artifact"})
        data = b""
    spec = _publish_spec(body, upload.filename[:200] if upload is not None else "")
    fields: dict[str, Any] = {
        "actor": principal.actor,
        "allow_pickle": False,
        "lineage": {"produced_by": "POST /api/models/{name}/versions"},
        "model_spec": NewModel(
            description=spec.pop("description"),
            owner=spec.pop("owner"),
            tenant=principal.tenant,
        ),
        **spec,
    }
    registry, store = api.registry, api.store
    if upload is None:
        version: ModelVersion = await asyncio.to_thread(
            lambda: publish_bytes(registry, store, name, data, **fields)
        )
    else:
        path, limit = upload.path, api.settings.max_artifact_bytes
        version = await asyncio.to_thread(
            lambda: publish_file(registry, store, name, path, max_bytes=limit, **fields)
        )
    return await _published(api, version)


async def _publish_endpoint(api: Services, call: Call, body: dict[str, Any]) -> Response:
    """Register an LLM endpoint; its credential reference is resolved here, on the
    server, and only from a variable named for upstreams
    (:func:`~finmaas.engines.credentials.check_server_reference`)."""
    from finmaas.engines.credentials import check_server_reference
    from finmaas.publish.llm_endpoints import publish_endpoint
    from finmaas.schema.llm_endpoint import endpoint_spec_from_dict

    unknown = sorted(set(body) - ENDPOINT_FIELDS)
    if unknown:
        raise Invalid(
            f"field {unknown[0]!r} is for a model file; an 'endpoint' publish takes "
            f"{', '.join(sorted(ENDPOINT_FIELDS))}"
        )
    spec = endpoint_spec_from_dict(body["endpoint"])
    if spec.credential is not None:
        check_server_reference(spec.credential)
    check = body.get("check", True)
    if not isinstance(check, bool):
        raise Invalid("'check' must be true or false")
    fields = _publish_spec(body, signature=False)
    principal, registry, store = call.principal, api.registry, api.store
    model_spec = NewModel(
        description=fields["description"], owner=fields["owner"], tenant=principal.tenant
    )
    version: ModelVersion = await asyncio.to_thread(
        lambda: publish_endpoint(
            registry,
            store,
            call.params["name"],
            spec,
            actor=principal.actor,
            check=check,
            metrics=fields["metrics"],
            tags=fields["tags"],
            parent_version=fields["parent_version"],
            lineage={"produced_by": "POST /api/models/{name}/versions (endpoint)"},
            model_card=fields["model_card"],
            model_spec=model_spec,
        )
    )
    return await _published(
        api,
        version,
        endpoint=version.params["endpoint"],
        upstream_check=version.params["upstream_check"],
    )


async def _published(api: Services, version: ModelVersion, **extra: Any) -> Response:
    """201 with the new version's facts (and ``extra``)."""
    if version.version == 1:  # a new model: let this worker see its tenant at once
        await api.guard.refresh()
    answer = {
        "model": version.model,
        "version": version.version,
        "ref": version.ref,
        "artifact_format": version.artifact_format,
        "artifact_size": version.artifact_size,
        "artifact_digest": version.artifact_digest,
        "created_by": version.created_by,
    }
    return json_response({**answer, **extra}, 201)


def _publish_spec(
    body: dict[str, Any], filename: str = "", *, signature: bool = True
) -> dict[str, Any]:
    """Check a publish body's fields (the file aside; ``filename``: the upload's name
    for it, the default of the field); the registry checks their contents.
    ``signature``: whether the body has one (an endpoint's is fixed)."""
    spec: dict[str, Any] = {}
    if signature:
        if "signature" not in body:
            raise Invalid("'signature' is required: the model's inputs and task")
        fmt = body.get("format")
        formats = [f.value for f in SAFE_FORMATS]
        if fmt is not None and fmt not in formats:
            raise Invalid(f"'format' must be one of {', '.join(formats)}")
        spec["signature"] = signature_from_dict(body["signature"])
        spec["fmt"] = ModelFormat(fmt) if fmt is not None else None
    for field in ("filename", "model_card", "description", "owner"):
        value = body.get(field, (filename or "upload") if field == "filename" else "")
        if not isinstance(value, str):
            raise Invalid(f"'{field}' must be text")
        spec[field] = value
    if len(spec["filename"]) > 200:
        raise Invalid("'filename' must be at most 200 characters")
    for field in ("metrics", "params", "tags"):
        value = body.get(field, {})
        if not isinstance(value, dict):
            raise Invalid(f"'{field}' must be an object")
        spec[field] = value
    parent = body.get("parent_version")
    if parent is not None and (isinstance(parent, bool) or not isinstance(parent, int)):
        raise Invalid("'parent_version' must be a version number")
    spec["parent_version"] = parent
    reference = body.get("reference")
    if reference is not None:
        if (
            not isinstance(reference, list)
            or not 0 < len(reference) <= MAX_REFERENCE_ROWS
            or not all(isinstance(row, dict) for row in reference)
        ):
            raise Invalid(
                f"'reference' must be a list of 1 to {MAX_REFERENCE_ROWS} records (raw inputs)"
            )
        import pandas as pd  # here, not at the top: a server worker starts without pandas

        spec["reference_sample"] = pd.DataFrame.from_records(reference)
    target = body.get("reference_target")
    if target is not None:
        if not isinstance(target, str) or not target:
            raise Invalid("'reference_target' must be the name of a column of 'reference'")
        if "reference_sample" not in spec:
            raise Invalid("'reference_target' names a column of 'reference'; send 'reference'")
        spec["reference_sample"], labels = split_target(
            spec["reference_sample"], target, "'reference'"
        )
        spec["reference_labels"] = labels.tolist()
        spec["reference_target"] = target
    explain_reference = body.get("explain_reference", "sample")
    if not isinstance(explain_reference, str):
        raise Invalid("'explain_reference' must be 'sample' or 'cutoff'")
    spec["explanation_reference"] = explain_reference
    codes = body.get("reason_codes")
    if codes is not None and not isinstance(codes, dict):
        raise Invalid("'reason_codes' must be an object of input name → reason text")
    spec["reason_codes"] = codes
    return spec
