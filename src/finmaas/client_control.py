"""The control plane's calls of the SDK (``/api``): inventory, four-eyes promotion,
keys, jobs, usage and audit.

:class:`finmaas.Client` inherits these methods; each needs the role its route names
(docs/api.md lists every route). Errors are raised as the SDK raises them, typed by
status, with the server's message: ``Forbidden`` (403) for the four-eyes rule or a
role short of the route's, ``NotFound`` (404) for a model the key cannot see, ….

    with Client(url, api_key=validator_key) as client:
        client.approve("credit-risk", 3, note="back-test and stability reviewed")
    with Client(url, api_key=admin_key) as client:
        client.promote("credit-risk", "production", 3)
"""

from __future__ import annotations

from datetime import date
from typing import Any
from urllib.parse import quote


class ControlCalls:
    """``/api`` calls; the transport (``_request``) is :class:`finmaas.Client`'s."""

    def _request(self, method: str, path: str, *, text: bool = False, **kwargs: Any) -> Any:
        raise NotImplementedError

    # -- who am I ---------------------------------------------------------------

    def whoami(self) -> dict[str, Any]:
        """The key this client sends: ``key_id``, ``name``, ``role``, ``tenant``."""
        return self._object("GET", "/api/whoami")

    # -- models and versions ----------------------------------------------------

    def list_models(self, *, include_archived: bool = False) -> list[dict[str, Any]]:
        """The models the key may see, each with its inventory fields and ``aliases``
        (alias → version); ``include_archived`` lists archived models too."""
        params = {"all": "1"} if include_archived else {}
        return list(self._request("GET", "/api/models", params=params)["models"])

    def model(self, name: str) -> dict[str, Any]:
        """One model: its inventory fields and ``aliases`` (alias → version)."""
        return self._object("GET", f"/api/models/{_part(name)}")

    def versions(self, name: str) -> list[dict[str, Any]]:
        """Every version of ``name``, archived ones included, oldest first."""
        return list(self._request("GET", f"/api/models/{_part(name)}/versions")["versions"])

    def version(self, name: str, version: int | str) -> dict[str, Any]:
        """One version in full; ``version`` is a number or an alias."""
        return self._object("GET", _version_path(name, version))

    def drift(
        self,
        name: str,
        version: int,
        *,
        window: str | None = None,
        since: date | None = None,
        until: date | None = None,
    ) -> dict[str, Any]:
        """The version's drift report (PSI of the score, CSI of each input) over the
        last ``window`` days (``"7d"``) or from ``since`` to ``until`` (exclusive)."""
        params: dict[str, str] = {}
        if window is not None:
            params["window"] = window
        if since is not None:
            params["since"] = since.isoformat()
        if until is not None:
            params["until"] = until.isoformat()
        return self._object("GET", f"{_version_path(name, version)}/drift", params=params)

    def explanation(self, name: str, version: int) -> dict[str, Any]:
        """The version's explanation profile: inputs by mean |contribution|."""
        return self._object("GET", f"{_version_path(name, version)}/explanation")

    # -- four-eyes promotion ----------------------------------------------------

    def approve(self, name: str, version: int, *, note: str) -> dict[str, Any]:
        """Approve ``version`` of ``name`` (needs a validator key of the model's tenant,
        or an admin key; the version's author may not approve it).

        ``note`` says what was reviewed and the conclusion (required). Returns the
        recorded decision: ``model``, ``version``, ``decision``, ``actor``, ``at``.
        Raises ``Forbidden`` with the server's message when the four-eyes rule, the
        role or the tenant refuses it.
        """
        return self._decide(name, version, "approve", note)

    def reject(self, name: str, version: int, *, note: str) -> dict[str, Any]:
        """Reject ``version`` of ``name`` (a validator or admin key); ``note`` says why.
        Returns the recorded decision, as :meth:`approve` does."""
        return self._decide(name, version, "reject", note)

    def promote(
        self, name: str, alias: str, version: int, *, accept_signature_change: bool = False
    ) -> dict[str, Any]:
        """Point ``alias`` of ``name`` at ``version``: ``PUT /api/models/{name}/aliases/{alias}``.

        Needs a developer key of the model's tenant; a protected alias (``production``
        and those the model lists) moves only with an admin key, and only to a version
        approved under the four-eyes rule. A version whose task, classes or positive
        class differ from the alias's current version needs ``accept_signature_change``.
        Returns ``model``, ``alias``, ``version``.
        """
        path = f"/api/models/{_part(name)}/aliases/{_part(alias)}"
        body: dict[str, Any] = {"version": version}
        if accept_signature_change:
            body["accept_signature_change"] = True
        return self._object("PUT", path, json=body)

    def rollback(self, name: str, alias: str = "production") -> dict[str, Any]:
        """Point ``alias`` of ``name`` back at the version it pointed at before (the same
        keys as :meth:`promote`). Returns ``model``, ``alias``, ``version``."""
        path = f"/api/models/{_part(name)}/aliases/{_part(alias)}/rollback"
        return self._object("POST", path)

    # -- keys ---------------------------------------------------------------------

    def create_key(self, name: str, role: str, **fields: Any) -> dict[str, Any]:
        """Issue a key (an admin key): ``fields`` are ``tenant``, ``owner``, ``grants``,
        ``expires_at`` (ISO 8601), ``requests_per_minute``, ``rows_per_minute``,
        ``monthly_quota``, ``tokens_per_minute`` and ``monthly_token_quota``. Returns
        ``key`` (its record) and ``secret``, shown this once."""
        return self._object("POST", "/api/keys", json={"name": name, "role": role, **fields})

    def keys(self, *, include_revoked: bool = False) -> list[dict[str, Any]]:
        """The keys of the caller's tenant (every tenant's for an admin), never a secret."""
        params = {"all": "1"} if include_revoked else {}
        return list(self._request("GET", "/api/keys", params=params)["keys"])

    def key(self, key_id: str) -> dict[str, Any]:
        """One key's record (an auditor or admin key)."""
        return self._object("GET", f"/api/keys/{_part(key_id)}")

    def revoke_key(self, key_id: str) -> dict[str, Any]:
        """Revoke a key (an admin key); returns its record."""
        return dict(self._object("POST", f"/api/keys/{_part(key_id)}/revoke")["key"])

    def rotate_key(self, key_id: str) -> dict[str, Any]:
        """Replace a key's secret (an admin key); returns ``key`` and the new ``secret``."""
        return self._object("POST", f"/api/keys/{_part(key_id)}/rotate")

    # -- jobs, usage, audit, decisions ---------------------------------------------

    def jobs(self) -> list[dict[str, Any]]:
        """The latest jobs of the caller's tenant, newest first."""
        return list(self._request("GET", "/api/jobs")["jobs"])

    def usage(self, **filters: str) -> dict[str, Any]:
        """Usage rows and totals; ``filters``: ``since``, ``until`` (YYYY-MM-DD),
        ``model``, ``key``. A key that is not an admin's or auditor's sees its own."""
        return self._object("GET", "/api/usage", params=filters)

    def audit(self, **filters: str) -> list[dict[str, Any]]:
        """Audit entries, oldest first (an auditor key); ``filters``: ``actor``,
        ``action``, ``target`` (``*`` globs), ``since``, ``until``, ``limit``."""
        return list(self._request("GET", "/api/audit", params=filters)["entries"])

    def verify_audit(self) -> dict[str, Any]:
        """Whether the audit trail's hash chain holds: ``ok``, ``checked``, ``problem``."""
        return self._object("GET", "/api/audit/verify")

    def decisions(self, request_id: str) -> dict[str, Any]:
        """The decisions recorded for one request (its ``X-Request-ID``; an auditor key)."""
        return self._object("GET", f"/api/decisions/{_part(request_id)}")

    def _decide(self, name: str, version: int, verb: str, note: str) -> dict[str, Any]:
        return self._object("POST", f"{_version_path(name, version)}/{verb}", json={"note": note})

    def _object(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        result: dict[str, Any] = self._request(method, path, **kwargs)
        return result


def _version_path(name: str, version: int | str) -> str:
    return f"/api/models/{_part(name)}/versions/{_part(str(version))}"


def _part(value: str) -> str:
    """A path segment, percent-encoded (a ``/`` in it cannot change the route)."""
    return quote(value, safe="")
