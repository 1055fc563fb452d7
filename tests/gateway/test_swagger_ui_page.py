"""/docs: the vendored Swagger UI is the pinned release, unchanged, and our page loads only
files served from this gateway, with the settings the README promises."""

from __future__ import annotations

import hashlib
import re
from html.parser import HTMLParser

import pytest

from services.gateway_static import STATIC_DIR, static_files

pytestmark = pytest.mark.unit

DOCS = STATIC_DIR / "docs"
VENDORED = DOCS / "swagger-ui"


def test_vendored_files_are_the_released_ones_listed_in_their_checksums() -> None:
    listed = {}
    for line in (VENDORED / "SHA256SUMS").read_text().splitlines():
        digest, name = line.split(maxsplit=1)
        listed[name] = digest
    on_disk = {p.name for p in VENDORED.iterdir()} - {"SHA256SUMS", "README.md"}
    assert set(listed) == on_disk
    for name, digest in listed.items():
        assert hashlib.sha256((VENDORED / name).read_bytes()).hexdigest() == digest, name
    assert {"LICENSE", "swagger-ui-bundle.js", "swagger-ui.css"} <= on_disk


def test_the_note_names_the_version_the_bundle_is() -> None:
    noted = re.search(r"`swagger-ui-dist` \*\*(\d+\.\d+\.\d+)\*\*", (VENDORED / "README.md").read_text())
    built = re.search(r'PACKAGE_VERSION:"(\d+\.\d+\.\d+)"', (VENDORED / "swagger-ui-bundle.js").read_text())
    assert noted and built and noted.group(1) == built.group(1)


class _References(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.inline_scripts = 0
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        self.urls += [v for k, v in values.items() if k in ("src", "href") and v]
        self._in_script = tag == "script" and "src" not in values
        if tag == "style" or "style" in values:
            raise AssertionError("no inline styles in our page")

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.inline_scripts += 1

    def handle_endtag(self, tag: str) -> None:
        self._in_script = False


def test_page_loads_only_files_this_gateway_serves_by_absolute_path() -> None:
    page = _References()
    page.feed((DOCS / "index.html").read_text())
    assert page.inline_scripts == 0, "scripts come from files: the policy allows no inline script"
    served = {"/" + f.relative for f in static_files()}
    assert page.urls
    for url in page.urls:
        # Absolute, because the page answers at /docs as well as /docs/.
        assert url.startswith("/docs/"), url
        assert url in served, url
    assert "/docs/swagger-ui/swagger-ui-bundle.js" in page.urls
    assert "/docs/initializer.js" in page.urls


def test_initializer_loads_our_document_keeps_tokens_in_the_page_and_calls_nothing_outside() -> None:
    script = (DOCS / "initializer.js").read_text()
    assert 'url: "/openapi.json"' in script
    assert "persistAuthorization: false" in script
    assert "validatorUrl: null" in script  # else the document goes to validator.swagger.io
    assert "queryConfigEnabled: false" in script  # ?url=... cannot load another document
    assert not re.search(r"https?://", script)
