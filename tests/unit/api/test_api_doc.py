"""docs/api.md documents every /api route: a route in the table without its section
(``### METHOD /api/…``) fails here, and so does a section for a route that is gone."""

from __future__ import annotations

import re
from pathlib import Path

from finmaas.api.routes import ROUTES

DOC = Path(__file__).resolve().parents[3] / "docs" / "api.md"
SECTION = re.compile(r"^### (GET|POST|PUT|PATCH|DELETE) (/api/\S*)$", re.MULTILINE)


def test_every_route_has_its_section_in_docs_api_md() -> None:
    documented = SECTION.findall(DOC.read_text(encoding="utf-8"))
    routes = {(route.method, route.path) for route in ROUTES}
    assert sorted(routes - set(documented)) == [], "routes missing from docs/api.md"
    assert sorted(set(documented) - routes) == [], "docs/api.md names routes that do not exist"
    assert len(documented) == len(set(documented)), "a route is documented twice"


def test_each_section_says_who_may_call_it() -> None:
    text = DOC.read_text(encoding="utf-8")
    sections = SECTION.split(text)[1:]
    for method, path, body in zip(sections[::3], sections[1::3], sections[2::3], strict=True):
        assert "Any key" in body or "**" in body, f"{method} {path} does not say who may call it"
