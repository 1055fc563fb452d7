"""`fulfillment token`: exactly one signed token on stdout, and a clear refusal when the
services would not accept it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from services.common.auth.keys import write_public_jwks
from services.common.auth.principal import Principal, Role
from services.common.auth.verify import TokenVerifier
from tests.auth_tokens import auth_settings

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]


def _token_command(state: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("FULFILLMENT_")}
    return subprocess.run(
        [sys.executable, "-m", "services.cli", "token", *args],
        env={**clean, "XDG_STATE_HOME": str(state), **env},
        cwd=REPO, capture_output=True, text=True, timeout=60,
    )


def test_prints_one_token_that_the_services_accept(tmp_path: Path) -> None:
    done = _token_command(tmp_path, "--role", "customer", "--subject", "alice", "--ttl", "120")
    assert done.returncode == 0, done.stderr
    [token] = done.stdout.splitlines()
    assert done.stdout == token + "\n"
    principal = TokenVerifier.from_settings(auth_settings(tmp_path)).verify(token)
    assert principal == Principal("alice", frozenset({Role.CUSTOMER}))
    assert (tmp_path / "fulfillment" / "signing-key.pem").stat().st_mode & 0o777 == 0o600


def test_the_default_subject_names_the_role(tmp_path: Path) -> None:
    done = _token_command(tmp_path, "--role", "admin")
    assert done.returncode == 0, done.stderr
    assert TokenVerifier.from_settings(auth_settings(tmp_path)).verify(done.stdout.strip()).actor == (
        "admin:local-admin"
    )


def test_the_signing_key_variable_is_honoured(tmp_path: Path) -> None:
    key = tmp_path / "keys" / "mine.pem"
    done = _token_command(tmp_path / "unused", "--role", "service", FULFILLMENT_AUTH_SIGNING_KEY=str(key))
    assert done.returncode == 0, done.stderr
    assert key.exists() and not (tmp_path / "unused").exists()


@pytest.mark.parametrize("ttl", ["0", "-60", "soon"])
def test_a_lifetime_that_is_not_positive_is_refused(tmp_path: Path, ttl: str) -> None:
    done = _token_command(tmp_path, "--role", "admin", "--ttl", ttl)
    assert done.returncode != 0 and done.stdout == ""
    assert "--ttl" in done.stderr


def test_an_unknown_role_is_refused(tmp_path: Path) -> None:
    done = _token_command(tmp_path, "--role", "root")
    assert done.returncode != 0 and done.stdout == ""


@pytest.mark.parametrize("jwks", ["https://idp.example/certs", "{tmp}/idp-jwks.json"])
def test_with_another_issuers_key_set_it_says_the_token_would_be_refused(tmp_path: Path, jwks: str) -> None:
    (tmp_path / "idp-jwks.json").write_text(json.dumps({"keys": [{"kty": "RSA", "kid": "idp-1"}]}))
    done = _token_command(tmp_path, "--role", "admin", FULFILLMENT_AUTH_JWKS=jwks.format(tmp=tmp_path))
    assert done.returncode != 0
    assert done.stdout == ""
    assert "would not accept" in done.stderr


def test_a_key_set_file_holding_the_local_key_is_no_obstacle(tmp_path: Path) -> None:
    published = write_public_jwks(auth_settings(tmp_path))
    done = _token_command(tmp_path, "--role", "admin", FULFILLMENT_AUTH_JWKS=str(published))
    assert done.returncode == 0, done.stderr
    assert done.stdout.count(".") == 2
