"""Security headers on every answer (livematte.server.middleware); the page's CSP is proven
in a real browser by test_browser.py."""

from __future__ import annotations

import pytest
from server_helpers import post

from livematte.server.middleware import API_CSP, DOCS_CSP, PAGE_CSP, csp_for


@pytest.mark.parametrize(
    ("method", "path", "csp"),
    [
        ("GET", "/", PAGE_CSP),
        ("GET", "/docs", DOCS_CSP),
        ("GET", "/redoc", DOCS_CSP),
        ("GET", "/api/v1/info", API_CSP),
        ("GET", "/openapi.json", API_CSP),
        ("GET", "/static/app.js", API_CSP),
        ("GET", "/nowhere", API_CSP),  # errors too
        ("POST", "/api/v1/matting", API_CSP),  # the PNG
        ("POST", "/api/v1/matting2", API_CSP),
    ],
)
def test_every_answer_has_the_security_headers(client, method, path, csp):
    r = post(client, path) if method == "POST" else client.get(path)
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["x-frame-options"] == "DENY"
    assert r.headers["referrer-policy"] == "no-referrer"
    assert r.headers["content-security-policy"] == csp
    assert "frame-ancestors 'none'" in csp


def test_the_page_policy_allows_only_its_own_code():
    page = dict(part.strip().split(" ", 1) for part in PAGE_CSP.split(";"))
    assert page["default-src"] == "'none'"
    assert page["script-src"] == "'self'" and page["style-src"] == "'self'"  # nothing inline
    assert page["connect-src"] == "'self'"
    assert "unsafe" not in PAGE_CSP and "*" not in PAGE_CSP and "http" not in PAGE_CSP
    assert csp_for("/docs/oauth2-redirect") == DOCS_CSP and csp_for("/static/x") == API_CSP
