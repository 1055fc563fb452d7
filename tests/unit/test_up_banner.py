"""What `fulfillment up` prints once ready: the pages on the gateway port next to it."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.common.config import Settings
from services.stack_prepare import banner

pytestmark = pytest.mark.unit


def banner_lines(**env: str) -> list[str]:
    settings = Settings.from_env({"FULFILLMENT_AUTH": "off", **env})
    return banner(settings, workers=2).splitlines()


def test_up_prints_the_docs_console_and_document_urls_under_the_gateway() -> None:
    lines = banner_lines(GATEWAY_PORT="8123")
    gateway = next(i for i, line in enumerate(lines) if line.split()[:1] == ["gateway"])
    assert lines[gateway].endswith("http://127.0.0.1:8123")
    assert [line.split()[-1] for line in lines[gateway + 1 : gateway + 4]] == [
        "http://127.0.0.1:8123/docs",
        "http://127.0.0.1:8123/console/",
        "http://127.0.0.1:8123/openapi.json",
    ]
    assert "Swagger UI" in lines[gateway + 1] and "console" in lines[gateway + 2]


def test_the_page_urls_follow_where_the_gateway_listens() -> None:
    text = "\n".join(banner_lines(GATEWAY_HOST="0.0.0.0", GATEWAY_PORT="9000"))
    assert "http://127.0.0.1:9000/docs" in text  # every interface: reached on loopback
    text = "\n".join(banner_lines(GATEWAY_HOST="::1", GATEWAY_PORT="9000"))
    assert "http://[::1]:9000/console/" in text


def test_the_admin_token_is_offered_for_the_console_and_swagger_ui(tmp_path: Path) -> None:
    text = "\n".join(banner_lines(
        FULFILLMENT_AUTH="on", FULFILLMENT_AUTH_SIGNING_KEY=str(tmp_path / "signing-key.pem")
    ))
    assert "export TOKEN=" in text
    assert "console's sign-in" in text and "Swagger UI's Authorize" in text
