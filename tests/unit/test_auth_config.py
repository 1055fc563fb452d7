"""The identity and access variables: defaults of the contract, bad values named, secrets
never printed."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.common.config import ConfigError, Settings, default_signing_key_path

pytestmark = pytest.mark.unit


def test_defaults_match_the_contract() -> None:
    s = Settings.from_env({"HOME": "/home/ada"})
    assert s.auth_enabled is True
    assert s.auth_jwks == ""  # the local key set
    assert (s.auth_issuer, s.auth_audience, s.auth_roles_claim) == ("fulfillment-dev", "fulfillment", "roles")
    assert s.auth_signing_key == "/home/ada/.local/state/fulfillment/signing-key.pem"
    assert s.service_token == ""


def test_every_variable_is_read() -> None:
    s = Settings.from_env({
        "FULFILLMENT_AUTH": "OFF",
        "FULFILLMENT_AUTH_JWKS": "https://idp.example/realms/shop/protocol/openid-connect/certs",
        "FULFILLMENT_AUTH_ISSUER": "https://idp.example/realms/shop",
        "FULFILLMENT_AUTH_AUDIENCE": "shop-api",
        "FULFILLMENT_AUTH_ROLES_CLAIM": "realm_access.roles",
        "FULFILLMENT_AUTH_SIGNING_KEY": "/run/secrets/signing-key.pem",
        "FULFILLMENT_SERVICE_TOKEN": " eyJ.service.token\n",
    })
    assert s.auth_enabled is False
    assert s.auth_jwks.startswith("https://idp.example/")
    assert (s.auth_issuer, s.auth_audience) == ("https://idp.example/realms/shop", "shop-api")
    assert s.auth_roles_claim == "realm_access.roles"
    assert s.auth_signing_key == "/run/secrets/signing-key.pem"
    assert s.service_token == "eyJ.service.token"


def test_the_signing_key_lives_in_the_users_state_directory() -> None:
    assert default_signing_key_path({"XDG_STATE_HOME": "/xdg/state", "HOME": "/home/ada"}) == Path(
        "/xdg/state/fulfillment/signing-key.pem"
    )
    # The XDG spec: a relative XDG_STATE_HOME is invalid and ignored.
    assert default_signing_key_path({"XDG_STATE_HOME": "state", "HOME": "/home/ada"}) == Path(
        "/home/ada/.local/state/fulfillment/signing-key.pem"
    )


def test_secrets_never_appear_in_printed_settings() -> None:
    s = Settings.from_env({
        "FULFILLMENT_SERVICE_TOKEN": "eyJhbGciOi.secret-token.sig",
        "FULFILLMENT_AUTH_SIGNING_KEY": "/run/secrets/very-private-key.pem",
    })
    assert "secret-token" not in repr(s) and "very-private-key" not in repr(s)
    assert "auth_issuer='fulfillment-dev'" in repr(s)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"FULFILLMENT_AUTH": "yes"}, "FULFILLMENT_AUTH must be on or off"),
        ({"FULFILLMENT_AUTH": "0"}, "FULFILLMENT_AUTH must be on or off"),
        ({"FULFILLMENT_AUTH_JWKS": "file:///etc/jwks.json"}, "a file path or an http"),
        ({"FULFILLMENT_AUTH_JWKS": "ftp://idp/jwks"}, "a file path or an http"),
        ({"FULFILLMENT_AUTH_ROLES_CLAIM": "realm_access..roles"}, "dotted path"),
        ({"FULFILLMENT_AUTH_ROLES_CLAIM": "roles."}, "dotted path"),
    ],
)
def test_bad_values_are_named_in_the_error(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Settings.from_env(env)


@pytest.mark.parametrize("value", ["on", "ON", " On ", ""])
def test_auth_is_on_unless_turned_off(value: str) -> None:
    assert Settings.from_env({"FULFILLMENT_AUTH": value}).auth_enabled is True
