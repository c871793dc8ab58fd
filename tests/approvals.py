"""Test helper: record the four-eyes approvals a protected alias needs."""

from __future__ import annotations

from finmaas.registry import Registry

VALIDATOR = "validator:test"


def approve(registry: Registry, name: str, *versions: int) -> None:
    """Approve ``versions`` of ``name`` (default: every active one) as an independent validator."""
    if not versions:
        versions = tuple(v.version for v in registry.list_versions(name, include_archived=False))
    for version in versions:
        registry.decide(name, version, "approved", note="reviewed in a test", actor=VALIDATOR)
