"""FULFILLMENT_TLS_* and GATEWAY_HOST as Settings.from_env reads them: checked at start."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.common.config import ConfigError, Settings
from services.common.tls import tls_files

pytestmark = pytest.mark.unit


@pytest.fixture
def pem_files(tmp_path: Path) -> dict[str, str]:
    files = {}
    for name in ("cert", "key", "ca"):
        path = tmp_path / f"{name}.pem"
        path.write_text("-----BEGIN PLACEHOLDER-----\n")
        files[name] = str(path)
    return files


def test_nothing_set_is_plaintext() -> None:
    settings = Settings.from_env({})
    assert (settings.tls_cert, settings.tls_key, settings.tls_ca) == ("", "", "")
    assert tls_files(settings) is None


def test_cert_and_key_turn_tls_on_and_the_ca_makes_it_mutual(pem_files: dict[str, str]) -> None:
    env = {"FULFILLMENT_TLS_CERT": pem_files["cert"], "FULFILLMENT_TLS_KEY": pem_files["key"]}
    files = tls_files(Settings.from_env(env))
    assert files is not None and not files.mutual
    assert (str(files.cert), str(files.key)) == (pem_files["cert"], pem_files["key"])
    files = tls_files(Settings.from_env({**env, "FULFILLMENT_TLS_CA": pem_files["ca"]}))
    assert files is not None and files.mutual and str(files.ca) == pem_files["ca"]


@pytest.mark.parametrize("given", [{"cert"}, {"key"}, {"ca"}, {"cert", "ca"}, {"key", "ca"}])
def test_half_configured_tls_is_refused_at_start(pem_files: dict[str, str], given: set[str]) -> None:
    env = {f"FULFILLMENT_TLS_{name.upper()}": pem_files[name] for name in given}
    with pytest.raises(ConfigError, match="FULFILLMENT_TLS_CERT and FULFILLMENT_TLS_KEY"):
        Settings.from_env(env)


@pytest.mark.parametrize("variable", ["FULFILLMENT_TLS_CERT", "FULFILLMENT_TLS_KEY", "FULFILLMENT_TLS_CA"])
def test_a_missing_file_is_named_at_start(
    pem_files: dict[str, str], tmp_path: Path, variable: str
) -> None:
    env = {
        "FULFILLMENT_TLS_CERT": pem_files["cert"],
        "FULFILLMENT_TLS_KEY": pem_files["key"],
        "FULFILLMENT_TLS_CA": pem_files["ca"],
        variable: str(tmp_path / "missing.pem"),
    }
    with pytest.raises(ConfigError, match=f"{variable}: .*missing.pem.* is not a readable file"):
        Settings.from_env(env)


def test_a_directory_is_not_a_certificate(pem_files: dict[str, str], tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="FULFILLMENT_TLS_CERT"):
        Settings.from_env({"FULFILLMENT_TLS_CERT": str(tmp_path), "FULFILLMENT_TLS_KEY": pem_files["key"]})


def test_the_gateway_binds_loopback_unless_told_otherwise() -> None:
    assert Settings.from_env({}).gateway_host == "127.0.0.1"
    assert Settings.from_env({"GATEWAY_HOST": "0.0.0.0"}).gateway_host == "0.0.0.0"
    assert Settings.from_env({"GATEWAY_HOST": ""}).gateway_host == "127.0.0.1"
