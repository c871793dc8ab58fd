"""Bodies of control-plane routes: JSON objects of known fields, and uploads.

A body is a JSON object whose unknown fields are refused. Two routes take uploads:
publishing a version and starting a training job. Their file travels as one part
of a ``multipart/form-data`` body, streamed to disk, beside a ``metadata`` part
with the JSON fields; the older JSON form (the file base64-encoded in a field) is
still accepted within the small body limit.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any

from finmaas.errors import Invalid
from finmaas.web.http import Request, UnsupportedMediaType, parse_json, require_json
from finmaas.web.uploads import Form, UploadedFile

METADATA = "metadata"


@dataclass(frozen=True)
class UploadRoute:
    """A route that takes an upload: the name of its file part and what the file is."""

    file_part: str
    what: str

    @property
    def file_parts(self) -> frozenset[str]:
        return frozenset({self.file_part})

    @property
    def field_parts(self) -> frozenset[str]:
        return frozenset({METADATA})


PUBLISH = UploadRoute("artifact", "the model file")
JOB = UploadRoute("data", "the CSV or Parquet file")


def form_document(
    form: Form, route: UploadRoute, allowed: frozenset[str]
) -> tuple[dict[str, Any], UploadedFile]:
    """The ``metadata`` part as a JSON object of ``allowed`` fields, and the file part."""
    raw = form.fields.get(METADATA)
    if raw is None:
        raise Invalid(f"the {METADATA!r} part is required: a JSON object of the upload's fields")
    file = form.files.get(route.file_part)
    if file is None:
        raise Invalid(f"the {route.file_part!r} part is required: {route.what}")
    try:
        document = parse_json(raw)
    except Invalid as exc:
        raise Invalid(f"the {METADATA!r} part: {exc}") from None
    if not isinstance(document, dict):
        raise Invalid(f"the {METADATA!r} part must be a JSON object")
    unknown = sorted(set(document) - allowed)
    if unknown:
        raise Invalid(
            f"unknown field {unknown[0][:64]!r} in the {METADATA!r} part; "
            f"allowed: {', '.join(sorted(allowed))}"
        )
    return document, file


def json_object(request: Request, allowed: frozenset[str]) -> dict[str, Any]:
    """The request's JSON body: an object of ``allowed`` fields."""
    require_json(request)
    body = parse_json(request.body)
    if not isinstance(body, dict):
        raise Invalid("request body must be a JSON object")
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise Invalid(f"unknown field {unknown[0][:64]!r}; allowed: {', '.join(sorted(allowed))}")
    return body


def upload_json_object(request: Request, allowed: frozenset[str]) -> dict[str, Any]:
    """An upload route's JSON body (the older form, within the small body limit)."""
    try:
        return json_object(request, allowed)
    except UnsupportedMediaType:
        shown = (request.header(b"content-type") or b"").decode("latin-1")[:100]
        raise UnsupportedMediaType(
            f"content type {shown!r} is not supported; send multipart/form-data "
            "(a 'metadata' JSON part and the file) or application/json"
        ) from None


def base64_field(body: dict[str, Any], name: str, what: str) -> bytes:
    """A required file sent base64-encoded in the JSON body."""
    encoded = body.get(name)
    if not isinstance(encoded, str) or not encoded:
        raise Invalid(f"{name!r} is required: {what}, base64-encoded")
    try:
        return base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise Invalid(f"{name!r} is not valid base64") from None
