"""Each part's security from the settings, in one place: TLS for its ports and channels
(services.common.tls) and identity (services.common.auth): the interceptor that
authenticates every caller and applies the access policy on the server side, and the
token a part presents as a client."""

from __future__ import annotations

from services.common.auth.interceptors import AuthInterceptor, log_auth_mode
from services.common.auth.mint import ServiceTokenSource, TokenSource
from services.common.config import Settings
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
