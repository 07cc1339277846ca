"""`sentra login`: OAuth 2.0 authorization code with PKCE (S256) in the browser, a one-shot
loopback listener on 127.0.0.1 (ephemeral port, random path), a single-use `state`
compared in constant time, a time-out. Providers: Supabase (its authorize endpoint and PKCE
token exchange) and any OpenID Connect provider by discovery.

Supabase forwards `state` to the upstream identity provider, so there the request is bound
by the PKCE verifier (only this process knows it) and the random callback path instead.
Every token is verified (`verify.verify_token`) before it is stored or used.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from sentra_scan.auth.verify import (
    Claims,
    JwksCache,
    TokenError,
    TokenPolicy,
    check_url,
    https_fetch,
    verify_token,
)

__all__ = ["Claims", "Provider", "Tokens", "discover", "login", "refresh", "revoke", "supabase", "verify_token"]

OIDC_CALLBACK_PATH = "/callback"  # register http://127.0.0.1/callback (any port) at the provider
DONE_PAGE = (
    b"<!doctype html><meta charset=utf-8><title>Sentra</title>"
    b"<p>Sentra: login complete. You can close this tab and return to your terminal.</p>"
)
FAIL_PAGE = b"<!doctype html><meta charset=utf-8><title>Sentra</title><p>Sentra: login failed. See your terminal.</p>"


@dataclass(frozen=True)
class Provider:
    kind: str  # "supabase" or "oidc"
    issuer: str
    authorize_url: str
    token_url: str
    jwks_uri: str
    client_id: str = ""
    audience: str = "authenticated"
    role: str | None = "authenticated"
    revocation_url: str | None = None
    scopes: str = "openid"
    upstream: str = "github"  # Supabase: the identity provider behind it
    allow_http_loopback: bool = False  # tests and local development only

    def policy(self) -> TokenPolicy:
        return TokenPolicy(issuer=self.issuer, audience=self.audience, role=self.role)

    def jwks(self, fetch: Callable[[str], Mapping[str, Any]] | None = None) -> JwksCache:
        return JwksCache(self.jwks_uri, fetch or https_fetch(self.allow_http_loopback))

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def supabase(url: str, *, upstream: str = "github", allow_http_loopback: bool = False) -> Provider:
    base = url.rstrip("/") + "/auth/v1"
    check_url(base, allow_http_loopback)
    return Provider(
        kind="supabase",
        issuer=base,
        authorize_url=f"{base}/authorize",
        token_url=f"{base}/token",
        jwks_uri=f"{base}/.well-known/jwks.json",
        revocation_url=f"{base}/logout",
        upstream=upstream,
        allow_http_loopback=allow_http_loopback,
    )


def discover(
    issuer: str,
    *,
    client_id: str,
    audience: str | None = None,
    role: str | None = None,
    scopes: str = "openid offline_access",
    allow_http_loopback: bool = False,
    fetch: Callable[[str], Mapping[str, Any]] | None = None,
) -> Provider:
    """An OpenID Connect provider from its discovery document."""
    get = fetch or https_fetch(allow_http_loopback)
    doc = get(issuer.rstrip("/") + "/.well-known/openid-configuration")
    if doc.get("issuer") != issuer.rstrip("/") and doc.get("issuer") != issuer:
        raise TokenError("the discovery document names another issuer")
    methods = doc.get("code_challenge_methods_supported") or ["S256"]
    if "S256" not in methods:
        raise TokenError("the provider does not support PKCE S256")
    for key in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
        if not isinstance(doc.get(key), str):
            raise TokenError(f"the discovery document lacks {key}")
        check_url(doc[key], allow_http_loopback)
    return Provider(
        kind="oidc",
        issuer=str(doc["issuer"]),
        authorize_url=doc["authorization_endpoint"],
        token_url=doc["token_endpoint"],
        jwks_uri=doc["jwks_uri"],
        client_id=client_id,
        audience=audience or client_id,
        role=role,
        revocation_url=doc.get("revocation_endpoint"),
        scopes=scopes,
        allow_http_loopback=allow_http_loopback,
    )


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(64)[:96]
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode("ascii")).digest()).rstrip(b"=").decode()
    return verifier, challenge


def _same(a: str, b: str) -> bool:
    """Constant-time equality for any text (compare_digest refuses non-ASCII str)."""
    return hmac.compare_digest(a.encode("utf-8", "surrogateescape"), b.encode("utf-8", "surrogateescape"))


def _answers(params: Mapping[str, str], state: str | None, issuer: str | None) -> bool:
    """The callback answers this request: its `state`, and its `iss` when the provider
    sends one (RFC 9207: a defence against mix-up attacks)."""
    if state is not None and not _same(params.get("state", ""), state):
        return False
    return issuer is None or "iss" not in params or _same(params["iss"], issuer)


class _Callback:
    def __init__(self, path: str) -> None:
        self.path = path
        self.params: dict[str, str] | None = None
        self.event = threading.Event()


class LoopbackListener:
    """One request to the callback path on 127.0.0.1:<ephemeral>, then it closes. The path
    is random unless one is given: an OpenID provider matches a loopback redirect URI on
    everything but its port (RFC 8252, section 7.3), so there it is the registered
    `/callback` and the `state` check binds the answer to this request."""

    def __init__(self, path: str | None = None, state: str | None = None, issuer: str | None = None) -> None:
        self.callback = _Callback(path or "/callback/" + secrets.token_urlsafe(16))
        cb = self.callback

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                if parts.path != cb.path or cb.event.is_set():
                    self.send_error(404)
                    return
                cb.params = {k: v[0] for k, v in parse_qs(parts.query).items()}
                ok = "code" in cb.params and _answers(cb.params, state, issuer)
                body = DONE_PAGE if ok else FAIL_PAGE
                self.send_response(200 if ok else 400)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Cache-Control", "no-store")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                cb.event.set()

            def log_message(self, format: str, *args: Any) -> None:  # never log (the URL holds the code)
                return

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def redirect_uri(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{self.callback.path}"

    def wait(self, timeout_s: float) -> dict[str, str]:
        try:
            if not self.callback.event.wait(timeout_s):
                raise TokenError(f"no answer from the browser within {timeout_s:g}s; run 'sentra login' again")
            return dict(self.callback.params or {})
        finally:
            self.close()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@dataclass(frozen=True)
class Tokens:
    access_token: str
    refresh_token: str | None
    claims: Claims

    def __repr__(self) -> str:
        return f"Tokens(sub={self.claims.subject!r}, exp={self.claims.expires_at})"


def authorize_url(provider: Provider, redirect_uri: str, challenge: str, state: str) -> str:
    if provider.kind == "supabase":
        query = {
            "provider": provider.upstream,
            "redirect_to": redirect_uri,
            "code_challenge": challenge,
            "code_challenge_method": "s256",
        }
    else:
        query = {
            "response_type": "code",
            "client_id": provider.client_id,
            "redirect_uri": redirect_uri,
            "scope": provider.scopes,
            "state": state,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
        if "offline_access" in provider.scopes:
            query["prompt"] = "consent"
    return provider.authorize_url + "?" + urlencode(query)


def _post(
    provider: Provider,
    url: str,
    *,
    form: dict[str, str] | None = None,
    json: dict[str, str] | None = None,
    bearer: str | None = None,
    verify: Any = True,
) -> dict[str, Any]:
    import httpx

    check_url(url, provider.allow_http_loopback)
    headers = {"Accept": "application/json"}
    if bearer:
        headers["Authorization"] = f"Bearer {bearer}"
    try:
        resp = httpx.post(url, data=form, json=json, headers=headers, timeout=15.0, verify=verify)
    except httpx.HTTPError as exc:
        raise TokenError(f"cannot reach {url}: {type(exc).__name__}") from None
    if resp.status_code >= 400:
        try:
            err = resp.json()
        except ValueError:
            err = None
        detail = ""
        if isinstance(err, dict):
            detail = err.get("error_description") or err.get("error") or err.get("msg") or ""
        raise TokenError(f"{url} refused the request (HTTP {resp.status_code}) {str(detail)[:200]}".rstrip())
    try:
        data = resp.json() if resp.content else {}
    except ValueError:
        raise TokenError(f"{url} did not return JSON") from None
    if not isinstance(data, dict):
        raise TokenError(f"{url} did not return a JSON object")
    return data


def _tokens(provider: Provider, data: Mapping[str, Any], jwks: JwksCache) -> Tokens:
    access = data.get("access_token")
    if not isinstance(access, str):
        raise TokenError("the token endpoint returned no access token")
    claims = verify_token(access, provider.policy(), jwks)
    refresh = data.get("refresh_token")
    return Tokens(access, refresh if isinstance(refresh, str) else None, claims)


def login(
    provider: Provider,
    *,
    open_browser: Callable[[str], None],
    timeout_s: float = 300.0,
    jwks: JwksCache | None = None,
) -> Tokens:
    jwks = jwks or provider.jwks()
    verifier, challenge = pkce_pair()
    state = secrets.token_urlsafe(32)
    oidc = provider.kind != "supabase"
    listener = LoopbackListener(OIDC_CALLBACK_PATH, state, provider.issuer) if oidc else LoopbackListener()
    try:
        open_browser(authorize_url(provider, listener.redirect_uri, challenge, state))
    except BaseException:
        listener.close()
        raise
    params = listener.wait(timeout_s)
    if "error" in params:
        detail = f"{params.get('error')} {params.get('error_description', '')}"[:200]
        raise TokenError(f"the provider refused the login: {detail}")
    if provider.kind != "supabase" and not _same(params.get("state", ""), state):
        raise TokenError("the login answer's state does not match this request (possible CSRF); nothing stored")
    if not _answers(params, None, provider.issuer):
        raise TokenError("the login answer names another issuer (possible mix-up attack); nothing stored")
    code = params.get("code")
    if not code:
        raise TokenError("the login answer has no authorization code")
    if provider.kind == "supabase":
        data = _post(
            provider, provider.token_url + "?grant_type=pkce", json={"auth_code": code, "code_verifier": verifier}
        )
    else:
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": listener.redirect_uri,
            "client_id": provider.client_id,
            "code_verifier": verifier,
        }
        data = _post(provider, provider.token_url, form=form)
    return _tokens(provider, data, jwks)


def refresh(provider: Provider, refresh_token: str, jwks: JwksCache | None = None) -> Tokens:
    """A new access token; the provider rotates the refresh token (the old one is dead)."""
    jwks = jwks or provider.jwks()
    if provider.kind == "supabase":
        data = _post(provider, provider.token_url + "?grant_type=refresh_token", json={"refresh_token": refresh_token})
    else:
        form = {"grant_type": "refresh_token", "refresh_token": refresh_token, "client_id": provider.client_id}
        data = _post(provider, provider.token_url, form=form)
    tokens = _tokens(provider, data, jwks)
    if tokens.refresh_token is None:
        tokens = replace(tokens, refresh_token=refresh_token)
    return tokens


def revoke(provider: Provider, tokens: Tokens | None, refresh_token: str | None) -> bool:
    """End the session at the provider; False when there was nothing it could revoke.
    Supabase signs out with the (valid) access token; an OpenID provider revokes the
    refresh token, which needs no valid access token."""
    if provider.revocation_url is None:
        return False
    if provider.kind == "supabase":
        if tokens is None:
            return False
        _post(provider, provider.revocation_url, json={}, bearer=tokens.access_token)
        return True
    if not refresh_token:
        return False
    form = {"token": refresh_token, "token_type_hint": "refresh_token", "client_id": provider.client_id}
    _post(provider, provider.revocation_url, form=form)
    return True
