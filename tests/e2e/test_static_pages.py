"""The gateway's own pages through the real Envoy of `fulfillment up`: /openapi.json,
Swagger UI at /docs and the console at /console/, every file of gateway/static served as
it is on disk, without a token, with its content type and security headers; the API
still demands a token; Swagger UI in Chromium lists the document's operations and runs
one with a pasted token, fetching nothing from anywhere else."""

from __future__ import annotations

import gzip
import http.client
import json
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, Page

from services.gateway_static import (
    CONTENT_SECURITY_POLICY,
    STATIC_DIR,
    StaticFile,
    static_files,
)
from tests.browser import chromium
from tests.e2e.conftest import Stack
from tests.e2e.gateway_replies import assert_error, error_of, send

pytestmark = pytest.mark.e2e

FILES = static_files()
BROWSER_TIMEOUT_MS = 30_000
HTTP_METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}
# XML namespace names: identifiers in SVG/MathML code that no browser fetches.
NAMESPACES = {
    "http://www.w3.org/2000/svg", "http://www.w3.org/1999/xhtml", "http://www.w3.org/1999/xlink",
    "http://www.w3.org/1998/Math/MathML", "http://www.w3.org/XML/1998/namespace",
    "http://www.w3.org/2000/xmlns/",
}
VENDORED = "docs/swagger-ui/"


@dataclass(frozen=True)
class Fetched:
    status: int
    headers: dict[str, str]
    body: bytes


def fetch(stack: Stack, method: str, path: str, headers: dict[str, str] | None = None) -> Fetched:
    """One request with no token unless `headers` carry one; the body is not decoded."""
    url = urlsplit(stack.gateway)
    connection = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
    try:
        connection.request(method, path, headers=headers or {})
        response = connection.getresponse()
        return Fetched(
            response.status,
            {name.lower(): value for name, value in response.getheaders()},
            response.read(),
        )
    finally:
        connection.close()


def test_up_prints_where_the_pages_are(stack: Stack) -> None:
    output = stack.process.output()
    for path in ("/docs", "/console/", "/openapi.json"):
        assert f"{stack.gateway}{path}\n" in output, path


@pytest.mark.parametrize("file", FILES, ids=[f.relative for f in FILES])
def test_every_file_is_served_as_it_is_on_disk_without_a_token(stack: Stack, file: StaticFile) -> None:
    content = (STATIC_DIR / file.relative).read_bytes()
    for path in file.url_paths:
        got = fetch(stack, "GET", path)
        assert got.status == 200, (path, got.body[:300])
        assert got.body == content, path
        assert got.headers["content-type"] == file.content_type, path
        assert got.headers["x-content-type-options"] == "nosniff", path
        assert got.headers["content-security-policy"] == CONTENT_SECURITY_POLICY, path
        assert got.headers["cache-control"] == file.cache_control, path
        head = fetch(stack, "HEAD", path)
        assert (head.status, head.body) == (200, b""), path
        assert head.headers["content-type"] == file.content_type, path
        assert int(head.headers["content-length"]) == len(content), path


def test_the_contracts_paths_answer_with_the_document_the_ui_and_the_console(stack: Stack) -> None:
    document = fetch(stack, "GET", "/openapi.json")
    assert document.headers["content-type"] == "application/json"
    assert json.loads(document.body) == json.loads((STATIC_DIR / "openapi.json").read_text())
    docs_page = (STATIC_DIR / "docs" / "index.html").read_bytes()
    for path in ("/docs", "/docs/"):
        assert fetch(stack, "GET", path).body == docs_page, path
    console = fetch(stack, "GET", "/console/")
    assert console.body == (STATIC_DIR / "console" / "index.html").read_bytes()
    assert b'name="token"' in console.body  # the contract's sign-in field
    redirect = fetch(stack, "GET", "/console")
    assert redirect.status == 301 and redirect.headers["location"] == "/console/"


def test_large_assets_are_gzipped_for_callers_that_accept_it(stack: Stack) -> None:
    bundle = STATIC_DIR / VENDORED / "swagger-ui-bundle.js"
    got = fetch(stack, "GET", "/docs/swagger-ui/swagger-ui-bundle.js", {"accept-encoding": "gzip"})
    assert got.status == 200 and got.headers["content-encoding"] == "gzip"
    assert gzip.decompress(got.body) == bundle.read_bytes()
    assert len(got.body) < bundle.stat().st_size / 2
    assert got.headers["content-type"] == "text/javascript; charset=utf-8"


def test_api_replies_are_never_compressed(stack: Stack) -> None:
    """A gzip'd stream (WatchOrder, the bulk upload) would wait for whole blocks."""
    asks_gzip = {"accept-encoding": "gzip", **stack.authorization()}
    got = fetch(stack, "GET", "/v1/products?page_size=1", asks_gzip)
    assert got.status == 200 and "content-encoding" not in got.headers
    assert isinstance(json.loads(got.body), dict)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/docs/no-such-file.js"),
        ("GET", "/console/no-such-view.js"),
        ("GET", "/docs/swagger-ui/swagger-ui-bundle.js.map"),
        ("GET", "/openapi.yaml"),
        ("POST", "/openapi.json"),
        ("PUT", "/docs"),
        ("DELETE", "/console/"),
    ],
)
def test_missing_files_and_other_methods_get_the_gateways_404(stack: Stack, method: str, path: str) -> None:
    assert_error(send(stack.gateway, method, path, body=b"" if method != "GET" else None), 404, 5)


def test_a_bad_token_does_not_keep_anyone_from_the_pages(stack: Stack) -> None:
    for path in ("/openapi.json", "/docs", "/console/"):
        got = fetch(stack, "GET", path, {"authorization": "Bearer not.a.token"})
        assert got.status == 200, path


def test_the_api_still_demands_a_token(stack: Stack) -> None:
    refused = send(stack.gateway, "GET", "/v1/products")
    assert refused.status == 401 and error_of(refused)["code"] == 16
    status, _ = stack.http("GET", "/v1/products")
    assert status == 200


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.urls += [v for k, v in attrs if k in ("src", "href", "action", "poster", "data") and v]


def _external(url: str) -> bool:
    return bool(urlsplit(url).netloc) or url.startswith(("http:", "https:", "//"))


@pytest.mark.parametrize(
    "file",
    [f for f in FILES if f.content_type.split(";")[0] in ("text/html", "text/css", "text/javascript")],
    ids=lambda f: f.relative,
)
def test_no_served_page_sends_the_browser_elsewhere(stack: Stack, file: StaticFile) -> None:
    """HTML and CSS name only this origin's files (or data: URIs); our own scripts hold no
    URL but XML namespace names. The vendored Swagger UI bundle quotes URLs (RFCs, the
    validator it is configured not to use): what it really fetches is checked in the browser
    below, under a policy that would refuse anything else."""
    text = fetch(stack, "GET", file.url_paths[0]).body.decode()
    kind = file.content_type.split(";")[0]
    if kind == "text/html":
        links = _Links()
        links.feed(text)
        assert not [url for url in links.urls if _external(url)]
        assert not re.search(r"<base\b", text, re.IGNORECASE)
    elif kind == "text/css":
        urls = re.findall(r"url\(\s*['\"]?([^'\")]+)", text)
        for url in urls + re.findall(r"@import\s+['\"]([^'\"]+)", text):
            assert url.startswith("data:") or not _external(url), url
    elif not file.relative.startswith(VENDORED):
        urls = set(re.findall(r"(?:https?:)?//[A-Za-z0-9.-]+\.[A-Za-z]{2,}[^\s'\"`)]*", text))
        assert urls <= NAMESPACES, urls - NAMESPACES


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as launched:
        yield launched


@dataclass
class Watched:
    page: Page
    errors: list[str]
    requests: list[str]


@pytest.fixture
def docs(browser: Browser, stack: Stack) -> Iterator[Watched]:
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(BROWSER_TIMEOUT_MS)
    watched = Watched(page, [], [])
    page.on("pageerror", lambda error: watched.errors.append(f"page error: {error}"))
    page.on("console", lambda m: watched.errors.append(m.text) if m.type == "error" else None)
    page.on("request", lambda request: watched.requests.append(request.url))
    try:
        page.goto(f"{stack.gateway}/docs")
        page.wait_for_selector(".opblock")
        yield watched
    finally:
        context.close()


def test_swagger_ui_lists_every_operation_of_the_document(docs: Watched, stack: Stack) -> None:
    document = json.loads(fetch(stack, "GET", "/openapi.json").body)
    documented = {
        (method.upper(), path)
        for path, item in document["paths"].items()
        for method in item
        if method in HTTP_METHODS
    }
    shown = {
        (
            block.locator(".opblock-summary-method").inner_text().strip(),
            block.locator(".opblock-summary-path").get_attribute("data-path"),
        )
        for block in docs.page.locator(".opblock").all()
    }
    assert shown == documented
    assert docs.page.locator(".info .title").inner_text().startswith(document["info"]["title"])
    assert docs.errors == []


def test_try_it_out_with_a_pasted_admin_token_lists_products(docs: Watched, stack: Stack) -> None:
    sku = f"docs-{uuid.uuid4().hex[:10]}"
    created, _ = stack.http(
        "POST", "/v1/products", {"sku": sku, "name": "Docs", "description": "d", "price": "1.00"}
    )
    assert created == 200
    page = docs.page
    token = stack.authorization()["Authorization"].removeprefix("Bearer ")
    page.click("button.authorize")
    page.fill(".modal-ux input", token)
    page.click(".modal-ux .auth-btn-wrapper button.authorize")
    page.click(".modal-ux button.btn-done")

    operation = page.locator("[id$='-InventoryService_ListProducts']")
    operation.locator(".opblock-summary-control").click()
    operation.locator(".try-out__btn").click()
    operation.locator("button.execute").click()
    status = operation.locator(".live-responses-table tbody .response-col_status")
    status.wait_for()
    assert status.inner_text().strip() == "200"
    assert "products" in operation.locator(".live-responses-table .microlight").first.inner_text()
    assert f"Authorization: Bearer {token}" in operation.locator(".curl-command").inner_text()

    # Kept in the page only (persistAuthorization off): nothing stored, gone on reload.
    stored = page.evaluate("() => JSON.stringify([localStorage, sessionStorage])")
    assert token not in stored
    page.reload()
    page.wait_for_selector(".opblock")
    assert page.locator("button.authorize.locked").count() == 0
    assert docs.errors == []
    origin = f"{stack.gateway}/"
    assert [url for url in docs.requests if not url.startswith(origin)] == []
