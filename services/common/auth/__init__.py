"""Identity and access: who the caller is (a verified JWT) and what it may call.

- principal: the roles, the Principal a handler acts for (current_principal()).
- keys: the local signing key (created on first use), its kid and public JWKS.
- key_set: the JWKS tokens are verified with (file, URL or local key), cached.
- verify: TokenVerifier, a bearer token in, a Principal or InvalidToken out.
- verified_tokens: tokens verified already, so a repeated one costs no signature check.
- mint: tokens signed with the local key; ServiceTokenSource for service callers.
- policy: the table of RPC -> roles allowed.
- interceptors: the server interceptor; client_interceptors: the channels' side.
"""
