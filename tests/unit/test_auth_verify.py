"""Token verification against every way a token can be wrong, and the attacks on JWT
verifiers; a refused token's message says why and never quotes the token."""

from __future__ import annotations

import json
import time
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from services.common.auth.key_set import KeySet, usable_keys
from services.common.auth.keys import key_id, local_jwks, public_jwk
from services.common.auth.mint import TokenMinter
from services.common.auth.principal import Principal, Role
from services.common.auth.verify import InvalidToken, TokenVerifier, bearer_token, roles_from_claims
from services.common.config import ConfigError, Settings
from tests.auth_tokens import (
    assert_never_quoted,
    auth_settings,
    b64_segment,
    claims,
    hmac_signed,
    local_key,
    sign,
    unsigned,
    with_payload,
)

pytestmark = pytest.mark.unit


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return auth_settings(tmp_path)


@pytest.fixture
def verifier(settings: Settings) -> TokenVerifier:
    return TokenVerifier.from_settings(settings)


def _refused(verifier: TokenVerifier, token: str, reason: str) -> str:
    with pytest.raises(InvalidToken) as refusal:
        verifier.verify(token)
    message = str(refusal.value)
    assert reason in message, message
    assert_never_quoted(message, token)
    return message


def test_a_token_minted_with_the_local_key_names_its_subject_and_roles(
    settings: Settings, verifier: TokenVerifier
) -> None:
    token = TokenMinter(settings).mint([Role.CUSTOMER], "alice", 60)
    assert verifier.verify(token) == Principal("alice", frozenset({Role.CUSTOMER}))


def test_a_forged_signature_is_refused(settings: Settings, verifier: TokenVerifier) -> None:
    impostor = ec.generate_private_key(ec.SECP256R1())
    kid = key_id(local_key(settings).public_key())
    _refused(verifier, sign(impostor, claims(), kid=kid), "signature does not verify")


def test_a_tampered_payload_is_refused(settings: Settings, verifier: TokenVerifier) -> None:
    genuine = sign(local_key(settings), claims(roles=["customer"]))
    _refused(verifier, with_payload(genuine, claims(roles=["admin"])), "signature does not verify")


@pytest.mark.parametrize("alg", ["none", "None", "NONE", ""])
def test_an_unsigned_token_is_refused(settings: Settings, verifier: TokenVerifier, alg: str) -> None:
    kid = key_id(local_key(settings).public_key())
    _refused(verifier, unsigned(claims(roles=["admin"]), kid, alg), "algorithm is not allowed")


def _public_secrets(settings: Settings) -> dict[str, bytes]:
    public = local_key(settings).public_key()
    return {
        "pem": public.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
        "jwk": json.dumps(public_jwk(public)).encode(),
        "jwks": json.dumps(local_jwks(settings)).encode(),
    }


@pytest.mark.parametrize("form", ["pem", "jwk", "jwks"])
@pytest.mark.parametrize("alg", ["HS256", "HS384", "HS512"])
def test_hmac_with_the_public_key_as_secret_is_refused(
    settings: Settings, verifier: TokenVerifier, form: str, alg: str
) -> None:
    kid = key_id(local_key(settings).public_key())
    token = hmac_signed(claims(roles=["admin"]), _public_secrets(settings)[form], kid, alg)
    _refused(verifier, token, "algorithm is not allowed")


def test_an_algorithm_other_than_the_keys_own_is_refused(settings: Settings, verifier: TokenVerifier) -> None:
    """An RS256 header on a token for our EC key: the key decides the algorithm."""
    kid = key_id(local_key(settings).public_key())
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    _refused(verifier, sign(rsa_key, claims(), kid=kid), "does not match its signing key")


def test_a_token_expired_beyond_the_leeway_is_refused(settings: Settings, verifier: TokenVerifier) -> None:
    now = int(time.time())
    token = sign(local_key(settings), claims(iat=now - 400, nbf=now - 400, exp=now - 60))
    _refused(verifier, token, "has expired")


def test_clock_skew_within_the_leeway_is_tolerated(settings: Settings, verifier: TokenVerifier) -> None:
    now = int(time.time())
    late = sign(local_key(settings), claims(iat=now - 400, nbf=now - 400, exp=now - 10))
    early = sign(local_key(settings), claims(iat=now + 10, nbf=now + 10, exp=now + 300))
    assert verifier.verify(late).subject == verifier.verify(early).subject == "alice"


@pytest.mark.parametrize("claim", ["nbf", "iat"])
def test_a_token_not_valid_yet_is_refused(settings: Settings, verifier: TokenVerifier, claim: str) -> None:
    later = int(time.time()) + 120
    token = sign(local_key(settings), claims(**{claim: later}, exp=later + 300))
    _refused(verifier, token, "not valid yet")


def test_another_issuer_is_refused(settings: Settings, verifier: TokenVerifier) -> None:
    _refused(verifier, sign(local_key(settings), claims(iss="https://evil.example")), "issuer (iss)")


@pytest.mark.parametrize("audience", ["billing", ["billing", "reports"]])
def test_another_audience_is_refused(
    settings: Settings, verifier: TokenVerifier, audience: str | list[str]
) -> None:
    _refused(verifier, sign(local_key(settings), claims(aud=audience)), "audience (aud)")


def test_a_token_for_several_audiences_including_ours_is_accepted(
    settings: Settings, verifier: TokenVerifier
) -> None:
    token = sign(local_key(settings), claims(aud=["billing", "fulfillment"]))
    assert verifier.verify(token).subject == "alice"


@pytest.mark.parametrize("claim", ["exp", "iss", "aud", "sub"])
def test_a_token_without_a_required_claim_is_refused(
    settings: Settings, verifier: TokenVerifier, claim: str
) -> None:
    _refused(verifier, sign(local_key(settings), claims(**{claim: None})), f"required claim {claim}")


@pytest.mark.parametrize("subject", ["", "   ", 42, ["alice"]])
def test_a_subject_that_names_nobody_is_refused(
    settings: Settings, verifier: TokenVerifier, subject: object
) -> None:
    _refused(verifier, sign(local_key(settings), claims(sub=subject)), "subject (sub)")


@pytest.mark.parametrize(
    "token",
    ["", "abc", "a.b", "a.b.c", "a.b.c.d", "....", "ey.ey.ey", "x" * 20_000, "é.é.é"],
    ids=["empty", "word", "two-parts", "garbage", "four-parts", "dots", "base64-junk", "huge", "non-ascii"],
)
def test_malformed_tokens_are_refused_in_plain_words(verifier: TokenVerifier, token: str) -> None:
    with pytest.raises(InvalidToken) as refusal:
        verifier.verify(token)
    message = str(refusal.value)
    assert "malformed" in message or "no bearer token" in message
    if token:
        assert token not in message


@pytest.mark.parametrize("exp", ["tomorrow", 1e999, [1], {"at": 1}])
def test_a_claim_of_the_wrong_type_is_malformed(
    settings: Settings, verifier: TokenVerifier, exp: object
) -> None:
    _refused(verifier, sign(local_key(settings), claims(exp=exp)), "malformed")


def test_a_token_from_an_unknown_key_is_refused(settings: Settings, verifier: TokenVerifier) -> None:
    stranger = ec.generate_private_key(ec.SECP256R1())
    _refused(verifier, sign(stranger, claims()), "key this service does not know")


def test_roles_come_from_a_nested_claim(tmp_path: Path) -> None:
    settings = auth_settings(tmp_path, auth_roles_claim="realm_access.roles")
    token = sign(local_key(settings), claims(
        roles=None, realm_access={"roles": ["customer", "offline_access", 7, "admin"]}
    ))
    principal = TokenVerifier.from_settings(settings).verify(token)
    assert principal.roles == frozenset({Role.CUSTOMER, Role.ADMIN})


def test_a_minted_token_puts_a_nested_roles_claim_where_it_is_read(tmp_path: Path) -> None:
    settings = auth_settings(tmp_path, auth_roles_claim="realm_access.roles")
    token = TokenMinter(settings).mint([Role.SERVICE], "worker", 60)
    assert TokenVerifier.from_settings(settings).verify(token).roles == frozenset({Role.SERVICE})


@pytest.mark.parametrize(
    ("claims_", "roles"),
    [
        ({}, set()),
        ({"roles": None}, set()),
        ({"roles": "admin"}, {Role.ADMIN}),
        ({"roles": ["admin", "root", None, {"admin": 1}]}, {Role.ADMIN}),
        ({"roles": {"admin": True}}, set()),
        ({"https://shop.example/roles": ["customer"]}, {Role.CUSTOMER}),
    ],
)
def test_only_strings_naming_our_roles_count(claims_: dict[str, object], roles: set[Role]) -> None:
    claim = "https://shop.example/roles" if "https://shop.example/roles" in claims_ else "roles"
    assert roles_from_claims(claims_, claim) == frozenset(roles)


def test_a_missing_nested_claim_means_no_roles() -> None:
    assert roles_from_claims({"realm_access": "x"}, "realm_access.roles") == frozenset()
    assert roles_from_claims({}, "realm_access.roles") == frozenset()


def test_a_third_party_issuers_key_set_file_verifies_its_tokens(tmp_path: Path) -> None:
    """A Keycloak-like identity provider: RSA keys in its JWKS file, nested roles."""
    idp_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwks = tmp_path / "idp-jwks.json"
    encryption_key = {**public_jwk(idp_key.public_key()), "use": "enc", "kid": "enc-1"}
    jwks.write_text(json.dumps({"keys": [
        encryption_key, {**public_jwk(idp_key.public_key()), "kid": "idp-1"},
    ]}))
    settings = auth_settings(
        tmp_path, auth_jwks=str(jwks), auth_issuer="https://idp.example/realms/shop",
        auth_audience="fulfillment", auth_roles_claim="realm_access.roles",
    )
    verifier = TokenVerifier.from_settings(settings)
    token = sign(idp_key, claims(
        iss="https://idp.example/realms/shop", sub="f3c1-user", roles=None,
        realm_access={"roles": ["customer", "default-roles-shop"]},
    ), kid="idp-1")
    assert verifier.verify(token) == Principal("f3c1-user", frozenset({Role.CUSTOMER}))
    by_encryption_key = sign(idp_key, claims(iss="https://idp.example/realms/shop"), kid="enc-1")
    _refused(verifier, by_encryption_key, "does not know")
    local = TokenMinter(settings).mint([Role.ADMIN], "local-admin", 60)
    _refused(verifier, local, "does not know")


def test_a_missing_key_set_file_stops_the_start(tmp_path: Path) -> None:
    settings = auth_settings(tmp_path, auth_jwks=str(tmp_path / "nowhere.json"))
    with pytest.raises(ConfigError, match=r"nowhere\.json could not be read"):
        TokenVerifier.from_settings(settings)


def test_hmac_and_weak_keys_in_a_key_set_are_ignored() -> None:
    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024).public_key()
    keys = usable_keys({"keys": [
        {"kty": "oct", "k": "c2VjcmV0", "kid": "hmac"},
        {**public_jwk(weak), "kid": "weak"},
        {**public_jwk(ec.generate_private_key(ec.SECP384R1()).public_key()), "kid": "p384", "alg": "ES384"},
        {**public_jwk(ec.generate_private_key(ec.SECP256R1()).public_key()), "kid": "good"},
        "not a key",
        {"kty": "RSA", "kid": "no-modulus"},
        {"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA", "kid": "off-the-curve"},
        {"kty": "EC", "kid": "no-curve"},
    ]})
    assert set(keys) == {"good"}


def test_a_token_without_kid_is_checked_against_a_single_key_set(settings: Settings) -> None:
    key = local_key(settings)
    verifier = TokenVerifier(
        KeySet(lambda: local_jwks(settings), "test"), issuer="fulfillment-dev",
        audience="fulfillment", roles_claim="roles",
    )
    token = jwt.encode(claims(), key, algorithm="ES256")
    assert verifier.verify(token).subject == "alice"


@pytest.mark.parametrize(
    ("metadata", "reason"),
    [
        (None, "needs a bearer token"),
        ((), "needs a bearer token"),
        ((("x-other", "1"),), "needs a bearer token"),
        ((("authorization", "Basic dXNlcjpwYXNz"),), "must read 'Bearer <token>'"),
        ((("authorization", "Bearer"),), "must read 'Bearer <token>'"),
        ((("authorization", "Bearer a.b.c"), ("authorization", "Bearer d.e.f")), "more than one"),
    ],
)
def test_the_bearer_entry_must_be_there_once(
    metadata: tuple[tuple[str, str], ...] | None, reason: str
) -> None:
    with pytest.raises(InvalidToken, match=reason) as refusal:
        bearer_token(metadata)
    assert "dXNlcjpwYXNz" not in str(refusal.value)


@pytest.mark.parametrize("value", ["Bearer a.b.c", "bearer a.b.c", "BEARER   a.b.c  "])
def test_the_bearer_scheme_is_case_insensitive(value: str) -> None:
    assert bearer_token((("authorization", value),)) == "a.b.c"


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
FUZZ = hypothesis_settings(
    max_examples=150, deadline=None, database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


@pytest.mark.fuzz
@FUZZ
@given(text=st.text(max_size=300))
def test_any_text_is_refused_as_invalid_token_and_nothing_else(verifier: TokenVerifier, text: str) -> None:
    with pytest.raises(InvalidToken):
        verifier.verify(text)


@pytest.mark.fuzz
@FUZZ
@given(
    header_extra=st.dictionaries(st.text(max_size=8), JSON, max_size=3),
    payload=JSON,
    signature=st.binary(max_size=80),
)
def test_any_json_in_a_token_is_refused_as_invalid_token_and_nothing_else(
    settings: Settings,
    verifier: TokenVerifier,
    header_extra: dict[str, object],
    payload: object,
    signature: bytes,
) -> None:
    header = {**header_extra, "alg": "ES256", "kid": key_id(local_key(settings).public_key())}
    token = ".".join([b64_segment(header), b64_segment(payload), b64_segment(signature)])
    with pytest.raises(InvalidToken):
        verifier.verify(token)
