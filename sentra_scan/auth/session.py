"""The current session: tokens from the credential store, verified, refreshed when expired
(with the provider's refresh-token rotation: the new refresh token replaces the old)."""

from __future__ import annotations

from sentra_scan.auth import oauth
from sentra_scan.auth.tokens import TokenStore, saved_provider
from sentra_scan.auth.verify import TokenError
from sentra_scan.errors import KeyStateError


def current(store: TokenStore | None = None) -> tuple[oauth.Provider, oauth.Tokens]:
    provider = saved_provider()
    if provider is None:
        raise KeyStateError("not logged in", hint="run 'sentra login --provider URL'")
    store = store or TokenStore()
    access, refresh = store.load(provider)
    jwks = provider.jwks()
    if access:
        try:
            claims = oauth.verify_token(access, provider.policy(), jwks)
            return provider, oauth.Tokens(access, refresh, claims)
        except TokenError as exc:
            if "expired" not in exc.message or not refresh:
                raise
    if not refresh:
        raise KeyStateError("no session tokens in the credential store", hint="run 'sentra login' again")
    tokens = oauth.refresh(provider, refresh, jwks)
    store.save(provider, tokens.access_token, tokens.refresh_token)
    return provider, tokens
