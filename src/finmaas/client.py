"""Python SDK: call a finmaas server over HTTP.

    from finmaas import Client

    with Client("http://127.0.0.1:8080") as client:
        result = client.predict("credit-risk", [applicant])
        result.predictions[0]["probability"], result.model_version

Errors come back as the same typed errors finmaas raises inside
(:class:`~finmaas.errors.Invalid` for 400, :class:`~finmaas.errors.NotFound`
for 404, …), with the server's message. One connection pool per client.

The control plane's calls (approve, reject, promote, rollback, keys, audit, …)
are in :mod:`finmaas.client_control`.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx
import numpy as np
import orjson

from finmaas.client_control import ControlCalls
from finmaas.errors import (
    Conflict,
    FinmaasError,
    Forbidden,
    Invalid,
    NotFound,
    NotSupported,
    PredictorFailed,
    Unauthenticated,
    Unavailable,
)
from finmaas.schema import ModelSignature

_ERRORS: Mapping[int, type[FinmaasError]] = {
    400: Invalid,
    401: Unauthenticated,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    413: Invalid,
    501: NotSupported,
    415: Invalid,
    429: Unavailable,
    503: Unavailable,
}


@dataclass(frozen=True)
class PredictResult:
    model_name: str
    model_version: int
    predictions: list[dict[str, Any]]


class Client(ControlCalls):
    """A finmaas server at ``url``: the data plane (predict, explain) and the control
    plane (publish, approve, promote, … from :class:`~finmaas.client_control.ControlCalls`).

    Parameters:
        url: base URL, e.g. ``http://127.0.0.1:8080``.
        api_key: sent as ``Authorization: Bearer <key>`` when given.
        timeout: seconds for each request.
        transport: an ``httpx`` transport (tests can pass ``httpx.MockTransport``).
    """

    def __init__(
        self,
        url: str = "http://127.0.0.1:8080",
        *,
        api_key: str | None = None,
        timeout: float = 10.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        headers = {"authorization": f"Bearer {api_key}"} if api_key else {}
        self.url = url.rstrip("/")
        self._http = httpx.Client(
            base_url=self.url, headers=headers, timeout=timeout, transport=transport
        )

    def predict(
        self,
        name: str,
        records: Sequence[Mapping[str, Any]],
        *,
        alias: str | None = None,
        version: int | None = None,
    ) -> PredictResult:
        """KServe V1 predict: records keyed by feature name, raw values."""
        params = _selection(alias, version)
        body = self._request(
            "POST", f"/v1/models/{name}:predict", params=params, json={"instances": list(records)}
        )
        return PredictResult(body["model_name"], int(body["model_version"]), body["predictions"])

    def explain(
        self,
        name: str,
        records: Sequence[Mapping[str, Any]],
        *,
        reasons: int | None = None,
        alias: str | None = None,
        version: int | None = None,
    ) -> PredictResult:
        """KServe V1 ``:explain``: predictions, each with its ``explanation``
        (contributions in log-odds, base value, and up to ``reasons`` adverse reasons)."""
        params = _selection(alias, version)
        if reasons is not None:
            params["reasons"] = str(reasons)
        body = self._request(
            "POST", f"/v1/models/{name}:explain", params=params, json={"instances": list(records)}
        )
        return PredictResult(body["model_name"], int(body["model_version"]), body["predictions"])

    def predict_v2(
        self,
        name: str,
        data: Mapping[str, Sequence[Any]] | Sequence[Mapping[str, Any]],
        *,
        alias: str | None = None,
        version: int | None = None,
        outputs: Sequence[str] | None = None,
    ) -> dict[str, np.ndarray]:
        """Open Inference Protocol infer with one tensor per feature; returns output arrays.

        ``data`` is records keyed by feature name, as :meth:`predict` takes them, or
        columns (a mapping of feature name to its values)."""
        columns = _columns(data)
        tensors = []
        for feature, values in columns.items():
            datatype = "BYTES" if any(isinstance(v, str) for v in values) else _numeric(values)
            tensors.append(
                {"name": feature, "datatype": datatype, "shape": [len(values)], "data": values}
            )
        document: dict[str, Any] = {"inputs": tensors}
        if outputs is not None:
            document["outputs"] = [{"name": output} for output in outputs]
        _selection(alias, version)  # not both
        path = f"/v2/models/{name}" + (f"/versions/{version}" if version is not None else "")
        params = {"alias": alias} if alias is not None else {}
        body = self._request("POST", f"{path}/infer", params=params, json=document)
        return {
            o["name"]: np.asarray(o["data"], dtype=object if o["datatype"] == "BYTES" else None)
            for o in body["outputs"]
        }

    def publish(
        self,
        name: str,
        path: str | Path,
        signature: ModelSignature,
        *,
        metrics: Mapping[str, float] | None = None,
        params: Mapping[str, Any] | None = None,
        tags: Mapping[str, str] | None = None,
        parent_version: int | None = None,
        description: str = "",
        owner: str = "",
        fmt: str | None = None,
        model_card: str = "",
        reference: Sequence[Mapping[str, Any]] | None = None,
        reference_target: str | None = None,
        explain_reference: str = "sample",
        reason_codes: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        """Publish a model file as the next version of ``name`` (needs a developer key).

        The file is streamed from disk (``multipart/form-data``), never read whole.
        ``fmt`` is the expected format (checked against the file), ``reference`` a
        sample of raw input records for the drift profile and explanations;
        ``reference_target`` names a column of those records that holds each one's
        true class: it is taken out of the sample, and a binary model whose scores rank
        the positive class below chance on it (AUC < 0.5) is refused. Returns
        the server's answer: ``model``, ``version``, ``artifact_format``, ….
        """
        file = Path(path)
        metadata: dict[str, Any] = {
            "filename": file.name,
            "signature": orjson.loads(signature.to_json()),
            "metrics": dict(metrics or {}),
            "params": dict(params or {}),
            "tags": dict(tags or {}),
            "parent_version": parent_version,
            "description": description,
            "owner": owner,
            "model_card": model_card,
            "explain_reference": explain_reference,
        }
        if fmt is not None:
            metadata["format"] = fmt
        if reference is not None:
            metadata["reference"] = [dict(record) for record in reference]
        if reference_target is not None:
            metadata["reference_target"] = reference_target
        if reason_codes is not None:
            metadata["reason_codes"] = dict(reason_codes)
        return self._upload(f"/api/models/{name}/versions", metadata, "artifact", file)

    def publish_endpoint(
        self,
        name: str,
        url: str,
        upstream_model: str,
        *,
        credential: str | None = None,
        price_prompt: str | None = None,
        price_completion: str | None = None,
        context_length: int | None = None,
        params: Mapping[str, float | int] | None = None,
        check: bool = True,
        metrics: Mapping[str, float] | None = None,
        tags: Mapping[str, str] | None = None,
        parent_version: int | None = None,
        description: str = "",
        owner: str = "",
        model_card: str = "",
    ) -> dict[str, Any]:
        """Register an OpenAI-compatible upstream as the next (``llm``) version of ``name``
        (needs a developer key).

        ``url`` is the upstream's OpenAI base URL; ``credential`` a *reference* the server
        resolves, ``env:FINMAAS_UPSTREAM_<NAME>`` (never the key itself); prices are per
        million tokens, as decimal strings; ``params`` the default ``temperature``,
        ``top_p`` and ``max_tokens``. Unless ``check`` is false the server checks the
        upstream lists the model and completes one token, and refuses the push if not.
        Returns the server's answer: ``model``, ``version``, ``upstream_check``, ….
        """
        endpoint: dict[str, Any] = {"url": url, "upstream_model": upstream_model}
        for key, value in (
            ("credential", credential),
            ("price_prompt", price_prompt),
            ("price_completion", price_completion),
            ("context_length", context_length),
        ):
            if value is not None:
                endpoint[key] = value
        endpoint["params"] = dict(params or {})
        body = {
            "endpoint": endpoint,
            "check": check,
            "metrics": dict(metrics or {}),
            "tags": dict(tags or {}),
            "parent_version": parent_version,
            "description": description,
            "owner": owner,
            "model_card": model_card,
        }
        result: dict[str, Any] = self._request("POST", f"/api/models/{name}/versions", json=body)
        return result

    def models(self) -> list[str]:
        """Names of the active models the server knows."""
        return list(self._request("GET", "/v1/models")["models"])

    def metadata(self, name: str, *, version: int | None = None) -> dict[str, Any]:
        """V2 model metadata: inputs and outputs with datatypes and shapes."""
        path = f"/v2/models/{name}" + (f"/versions/{version}" if version is not None else "")
        result: dict[str, Any] = self._request("GET", path)
        return result

    def train(self, template: str, data: str | Path, **options: Any) -> dict[str, Any]:
        """Start a training job (``credit``, ``forecast`` or ``sentiment``, or
        ``optimize`` through :meth:`optimize`; needs a developer key) on a local CSV
        or Parquet file; ``options`` are the template's (``name``, ``target``,
        ``protected``, …). Returns the job; follow it with :meth:`job` or
        :meth:`wait_job`."""
        file = Path(data)
        metadata = {"template": template, "filename": file.name, "options": options}
        return self._upload("/api/jobs", metadata, "data", file)

    def optimize(
        self, model: str, version: int, method: str, data: str | Path, **options: Any
    ) -> dict[str, Any]:
        """Start an optimisation job (``quantize``, ``prune``, ``distill`` or ``convert``;
        needs a developer key) of ``model`` version ``version``, tuned and compared on a
        local CSV or Parquet file; ``options`` are :class:`finmaas.optimize.OptimizeRun`'s
        (``target``, ``max_metric_drop``, ``mode``, …). Returns the job; when it
        succeeds, its ``versions[0]`` holds the new version and its ``report``."""
        return self.train("optimize", data, name=model, version=version, method=method, **options)

    def job(self, job_id: str) -> dict[str, Any]:
        """A job's state, progress message, log, versions and error."""
        result: dict[str, Any] = self._request("GET", f"/api/jobs/{job_id}")
        return result

    def wait_job(
        self, job_id: str, *, timeout: float = 3600.0, poll: float = 1.0
    ) -> dict[str, Any]:
        """Poll a job until it succeeds or fails (returned either way), or raise
        ``Unavailable`` after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            job = self.job(job_id)
            if job["state"] in ("succeeded", "failed"):
                return job
            if time.monotonic() >= deadline:
                raise Unavailable(f"job {job_id} is still {job['state']} after {timeout:g} s")
            time.sleep(poll)

    def model_card(self, name: str, version: int) -> str:
        """The markdown model card of ``name`` version ``version``."""
        text: str = self._request("GET", f"/api/models/{name}/versions/{version}/card", text=True)
        return text

    def ready(self) -> bool:
        try:
            return self._http.get("/v2/health/ready").status_code == 200
        except httpx.TransportError:
            return False

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def _upload(self, path: str, metadata: dict[str, Any], part: str, file: Path) -> dict[str, Any]:
        """POST ``metadata`` as a JSON part and ``file`` as the ``part`` part, streamed."""
        with file.open("rb") as stream:
            result: dict[str, Any] = self._request(
                "POST",
                path,
                files={
                    "metadata": (None, orjson.dumps(metadata), "application/json"),
                    part: (file.name, stream, "application/octet-stream"),
                },
            )
        return result

    def _request(self, method: str, path: str, *, text: bool = False, **kwargs: Any) -> Any:
        """The JSON answer (or its text, with ``text``); an error answer is raised."""
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TimeoutException:
            raise Unavailable(f"{self.url} did not answer {method} {path} in time") from None
        except httpx.TransportError as exc:
            raise Unavailable(f"cannot reach {self.url}: {exc}") from None
        if response.status_code >= 400:
            raise _error(response)
        return response.text if text else response.json()


def _selection(alias: str | None, version: int | None) -> dict[str, str]:
    if alias is not None and version is not None:
        raise Invalid("give either 'version' or 'alias', not both")
    if version is not None:
        return {"version": str(version)}
    return {"alias": alias} if alias is not None else {}


def _columns(
    data: Mapping[str, Sequence[Any]] | Sequence[Mapping[str, Any]],
) -> dict[str, list[Any]]:
    """Columns by feature name, from columns or from records (a feature a record lacks
    is sent as null, which the server refuses unless the feature is nullable)."""
    if isinstance(data, Mapping):
        return {feature: list(values) for feature, values in data.items()}
    records = list(data)
    for row, record in enumerate(records):
        if not isinstance(record, Mapping):
            raise Invalid(
                f"row {row}: a record must be a mapping of feature name to value, "
                f"got {type(record).__name__}"
            )
    names = dict.fromkeys(feature for record in records for feature in record)
    return {feature: [record.get(feature) for record in records] for feature in names}


def _numeric(values: list[Any]) -> str:
    if values and all(isinstance(v, bool) for v in values):
        return "BOOL"
    if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        return "INT64"
    return "FP64"


def _error(response: httpx.Response) -> FinmaasError:
    try:
        body = response.json()
        message = body.get("error") or body.get("message") or response.text
    except ValueError:
        message = response.text or response.reason_phrase
    error = _ERRORS.get(response.status_code, PredictorFailed)
    return error(str(message))
