"""Each part's security from the settings, in one place: TLS for its ports and channels
(services.common.tls) and identity (services.common.auth): the interceptor that
authenticates every caller and applies the access policy on the server side, and the
token a part presents as a client."""

from __future__ import annotations

from services.common.auth.interceptors import AuthInterceptor, log_auth_mode
from services.common.auth.keys import is_local_key_set
from services.common.auth.mint import ServiceTokenSource, TokenMinter, TokenSource
from services.common.auth.principal import Role
from services.common.config import ConfigError, Settings
from services.common.server import ServerSecurity
from services.common.tls import server_credentials


def server_security(settings: Settings, part: str) -> ServerSecurity:
    """For a server process; logs (loudly when it is off) whether authentication is on."""
    log_auth_mode(settings, part)
    return ServerSecurity(
        credentials=server_credentials(settings),
        interceptors=(AuthInterceptor.from_settings(settings),),
    )


def service_token_source(settings: Settings, subject: str) -> TokenSource | None:
    """What a part presents as the `service` caller `subject`; None with authentication off."""
    if not settings.auth_enabled:
        return None
    return ServiceTokenSource(settings, subject=subject)


def local_token_source(
    settings: Settings, role: Role, subject: str, ttl_s: float = 3600.0
) -> TokenSource | None:
    """A token of `role` minted from the local signing key, for the command line's own
    callers (`demo`, `bench`); None with authentication off. With an external identity
    provider there is no local key to mint with: ConfigError says what to do instead."""
    if not settings.auth_enabled:
        return None
    if not is_local_key_set(settings):
        raise ConfigError(
            "FULFILLMENT_AUTH_JWKS names another issuer's key set, so tokens minted here "
            "would be refused; this command needs the local signing key's key set"
        )
    token = TokenMinter(settings).mint([role], subject, ttl_s)
    return lambda: token
