"""Who may do what: roles, verbs, grants and tenants, as pure functions.

Data-plane verbs (``predict``, ``explain``, ``metadata``) are checked per
model: a key with no grants may use the models of its own tenant (as its role
allows); a key with grants may use exactly the models its grants match
(shell-style globs), which is also how a model is shared with another tenant.
A model a key may not use at all is answered like a model that does not exist.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from fnmatch import fnmatchcase

from finmaas.actor import DEFAULT_TENANT, Actor
from finmaas.errors import Forbidden, Invalid
from finmaas.registry.key_store import Grant, KeyRecord, ModelPolicy

ROLES = ("admin", "developer", "validator", "consumer", "auditor")
VERBS = ("predict", "explain", "metadata")

ROLE_VERBS: dict[str, frozenset[str]] = {
    "admin": frozenset(VERBS),
    "developer": frozenset(VERBS),
    "validator": frozenset(VERBS),
    "consumer": frozenset(VERBS),
    "auditor": frozenset({"metadata"}),
}
"""The most each role may do on a model it can see."""


@dataclass(frozen=True)
class Principal:
    """An authenticated caller: its key record and the actor it writes as."""

    key: KeyRecord
    actor: Actor

    @property
    def role(self) -> str:
        return self.key.role

    @property
    def tenant(self) -> str:
        return self.key.tenant

    @property
    def is_admin(self) -> bool:
        return self.key.role == "admin"

    def at(self, origin: str) -> Principal:
        """This principal acting from ``origin`` (the client address), for the audit trail."""
        return replace(self, actor=replace(self.actor, origin=origin))


def principal_of(key: KeyRecord, origin: str) -> Principal:
    actor = Actor(
        name=f"key:{key.id}", role=key.role, tenant=key.tenant, origin=origin, key_id=key.id
    )
    return Principal(key, actor)


ANONYMOUS_KEY = KeyRecord(
    id="anonymous",
    name="anonymous",
    owner="",
    tenant=DEFAULT_TENANT,
    role="admin",
    secret_hash="",
)
"""The caller when a server runs with ``--insecure-no-auth``."""


def allowed_verbs(key: KeyRecord, model: str, policy: ModelPolicy | None) -> frozenset[str]:
    """The verbs ``key`` may use on ``model`` (empty: the model is invisible to it)."""
    role_verbs = ROLE_VERBS.get(key.role, frozenset())
    if key.role == "admin":
        return role_verbs
    if key.grants:
        granted: set[str] = set()
        for grant in key.grants:
            if fnmatchcase(model, grant.models):
                granted.update(grant.verbs)
        return role_verbs & granted
    if policy is not None and policy.tenant == key.tenant:
        return role_verbs
    return frozenset()


def require_role(principal: Principal, *roles: str) -> None:
    """Function-level authorisation for control-plane routes."""
    if principal.role not in roles and not principal.is_admin:
        raise Forbidden(
            f"this needs the role {' or '.join(roles)}; the key's role is {principal.role}"
        )


def check_grants(raw: object) -> tuple[Grant, ...]:
    """Grants from JSON-like input: ``[{"models": "credit-*", "verbs": ["predict"]}]``."""
    if raw is None:
        return ()
    if not isinstance(raw, list) or len(raw) > 100:
        raise Invalid("grants must be a list of at most 100 {models, verbs} objects")
    grants = []
    for index, item in enumerate(raw):
        if not isinstance(item, dict) or set(item) - {"models", "verbs"}:
            raise Invalid(f"grant {index}: must be an object with 'models' and 'verbs'")
        pattern = item.get("models")
        if not isinstance(pattern, str) or not 0 < len(pattern) <= 64:
            raise Invalid(
                f"grant {index}: 'models' must be a model name or glob of 1-64 characters"
            )
        if any(not (c.isalnum() or c in "._-*?[]!") for c in pattern):
            raise Invalid(
                f"grant {index}: 'models' {pattern!r} has a character a model name cannot"
            )
        verbs = item.get("verbs", list(VERBS))
        if not isinstance(verbs, list) or not verbs or any(v not in VERBS for v in verbs):
            raise Invalid(f"grant {index}: 'verbs' must be a non-empty list of {', '.join(VERBS)}")
        grants.append(Grant(pattern, tuple(sorted(set(verbs)))))
    return tuple(grants)


def parse_grant(text: str) -> Grant:
    """A grant from the CLI: ``PATTERN`` or ``PATTERN:verb,verb``."""
    pattern, _, verbs = text.partition(":")
    raw = {"models": pattern, "verbs": verbs.split(",") if verbs else list(VERBS)}
    return check_grants([raw])[0]


def check_role(role: str) -> str:
    if role not in ROLES:
        raise Invalid(f"role must be one of {', '.join(ROLES)}, got {role[:40]!r}")
    return role
