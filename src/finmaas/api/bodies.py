"""What the control plane decides before it reads a body, and how an upload's parts are read.

Every ``/api`` route that takes a body names the role it needs; that role is
known from the method and path alone, so it is checked before one byte of the
body is read (the handlers check it again). Two routes take uploads: publishing
a version and starting a training job. Their file travels as one part of a
``multipart/form-data`` body, streamed to disk, beside a ``metadata`` part with
the JSON fields; the older JSON form (the file base64-encoded in a field) is
still accepted within the small body limit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from finmaas.api.changes import ModelChange
from finmaas.errors import Invalid
from finmaas.registry.names import check_alias_name
from finmaas.web.http import parse_json
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


def upload_route(method: str, parts: list[str]) -> UploadRoute | None:
    """``POST /api/models/{name}/versions`` and ``POST /api/jobs`` (``parts``: after ``api``)."""
    if method != "POST":
        return None
    if parts == ["jobs"]:
        return JOB
    if len(parts) == 3 and parts[0] == "models" and parts[2] == "versions":
        return PUBLISH
    return None


def roles_before_body(method: str, parts: list[str]) -> tuple[str, ...]:
    """The roles a body-carrying ``/api`` route that changes no model admits (empty: none
    checked before the body). Model changes are :func:`model_change`'s."""
    if method == "POST":
        if parts == ["jobs"]:
            return ("developer",)
        if parts[:1] == ["keys"] and (
            len(parts) == 1 or (len(parts) == 3 and parts[2] in ("revoke", "rotate"))
        ):
            return ("admin",)
    return ()


def model_change(method: str, parts: list[str]) -> ModelChange | None:
    """The model change of ``method`` on ``parts`` (the path after ``api``), from those
    alone: publishing a version (developer; may create the model), approving or rejecting
    a version (validator), moving or rolling back an alias (developer). None for any
    other route, and for a version or alias that is not well-formed (the handler says
    what is wrong with it)."""
    if len(parts) < 3 or parts[0] != "models":
        return None
    name = parts[1]
    if method == "POST" and parts[2:] == ["versions"]:
        return ModelChange(name, "version.publish", name, "developer", creating=True)
    if len(parts) == 5 and parts[2] == "versions" and method == "POST":
        verb, version = parts[4], parts[3]
        if verb in ("approve", "reject") and version.isascii() and version.isdigit():
            return ModelChange(name, f"version.{verb}", f"{name}@{int(version)}", "validator")
        return None
    if parts[2] == "aliases" and (
        (len(parts) == 4 and method == "PUT") or (parts[4:] == ["rollback"] and method == "POST")
    ):
        try:
            alias = check_alias_name(parts[3])
        except Invalid:
            return None
        action = "alias.set" if method == "PUT" else "alias.rollback"
        return ModelChange(name, action, f"{name}:{alias}", "developer")
    return None


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
