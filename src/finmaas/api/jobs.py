"""Job routes: start a training job on an uploaded file, list jobs, show one.

Developers start jobs; developers, validators and auditors see their tenant's jobs
(admins, every tenant's). The model a job registers its versions under is named in
the body, so its change gate runs once the body is read.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import uuid
from typing import Any

from finmaas.api.bodies import JOB, base64_field, form_document, upload_json_object
from finmaas.api.changes import ModelChange
from finmaas.api.context import Call, Services
from finmaas.errors import Invalid
from finmaas.jobs.runner import TEMPLATES, UPLOADS, Job, launch, reap
from finmaas.web.http import Response, json_response
from finmaas.web.uploads import UploadedFile, UploadRequest

JOB_FIELDS = frozenset({"template", "data", "filename", "options"})
_FILENAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


async def start_job(api: Services, call: Call) -> Response:
    """The data file is a ``data`` part beside a ``metadata`` part of the template
    and options, already spooled to disk (or, within the small body limit, base64
    in a JSON body); it is kept under ``<home>/jobs/uploads/`` until the job ends
    (the lineage keeps its sha256)."""
    request, principal = call.request, call.principal
    upload: UploadedFile | None = None
    if not isinstance(request, UploadRequest):
        body = upload_json_object(request, JOB_FIELDS)
        template, options, data, filename = _job_spec(body)
    else:
        body, upload = form_document(request.form, JOB, JOB_FIELDS - {"data"})
        template, options, data, filename = _job_spec(body, upload.filename)
    name = options.get("name")
    if not isinstance(name, str):
        raise Invalid("'options.name' is required: the model to register the versions under")
    await api.changes.authorize(
        principal, ModelChange(name, "job.start", name, call.roles, creating=True)
    )
    folder = api.settings.home / UPLOADS / uuid.uuid4().hex
    path = folder / filename

    def start() -> Job:
        folder.mkdir(parents=True, mode=0o700)
        if upload is None:
            path.write_bytes(data)
        else:  # moved (a rename under the same home), not copied
            shutil.move(upload.path, path)
        try:
            job = api.jobs.create(template, {**options, "data": str(path)}, principal.actor)
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)  # refused: keep no copy of the data
            raise
        reap(launch(api.settings, job))
        return job

    job = await asyncio.to_thread(start)
    return json_response(job.to_json(), 201)


async def list_jobs(api: Services, call: Call) -> Response:
    tenant = call.tenant
    found = await asyncio.to_thread(lambda: api.jobs.recent(tenant))
    return json_response({"jobs": [job.to_json() for job in found]})


async def show_job(api: Services, call: Call) -> Response:
    job_id, tenant = call.params["job_id"], call.tenant
    job = await asyncio.to_thread(lambda: api.jobs.get(job_id, tenant))
    return json_response(job.to_json())


def _job_spec(
    body: dict[str, Any], uploaded_name: str | None = None
) -> tuple[str, dict[str, Any], bytes, str]:
    """A job body's template, options, data bytes and a safe file name for them;
    ``uploaded_name``: the file came as a part, under that name (no bytes in the body)."""
    template = body.get("template")
    if template not in TEMPLATES:
        raise Invalid(f"'template' must be one of {', '.join(TEMPLATES)}")
    data = b""
    if uploaded_name is None:
        data = base64_field(body, "data", "the CSV or Parquet file")
    options = body.get("options", {})
    if not isinstance(options, dict):
        raise Invalid("'options' must be an object of the template's options")
    if "data" in options:
        raise Invalid("'options.data' is not allowed: the file travels in 'data'")
    default = uploaded_name if uploaded_name and _FILENAME.fullmatch(uploaded_name) else "data"
    filename = body.get("filename", default)
    if not isinstance(filename, str) or not _FILENAME.fullmatch(filename):
        raise Invalid("'filename' must be 1-100 letters, digits, '.', '_' or '-'")
    return str(template), options, data, filename
