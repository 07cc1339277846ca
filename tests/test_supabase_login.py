"""The Supabase flavour of `sentra login`, against a local stand-in of Supabase's auth API
(GoTrue): `/auth/v1/authorize` with PKCE S256 and `redirect_to`, the PKCE token exchange
(`POST /auth/v1/token?grant_type=pkce` with `auth_code` and `code_verifier`), refresh with
rotation, the JWKS, and `/auth/v1/logout`. No Supabase project is reachable here, so the
stand-in implements those endpoints as Supabase documents them; the client code under test
is the real one."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from sentra_scan.auth import oauth
from sentra_scan.auth.verify import TokenError


@dataclass
class FakeSupabase:
    key: Any
    base: str = ""
    codes: dict[str, str] = field(default_factory=dict)  # code -> challenge
    refresh: dict[str, str] = field(default_factory=dict)  # live refresh token -> sub
    revoked: list[str] = field(default_factory=list)
    last_authorize: dict[str, str] = field(default_factory=dict)

    def token(self, sub: str, **extra: Any) -> str:
        claims = {
            "sub": sub,
            "iss": f"{self.base}/auth/v1",
            "aud": "authenticated",
            "role": "authenticated",
            "exp": int(time.time()) + 300,
            **extra,
        }
        return jwt.encode(claims, self.key, "ES256", headers={"kid": "supa-1"})

    def jwk(self) -> dict[str, Any]:
        pub = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(self.key.public_key()))
        pub.update(kid="supa-1", use="sig", alg="ES256")
        return pub

    def issue(self, sub: str) -> dict[str, Any]:
        rt = secrets.token_urlsafe(16)
        self.refresh[rt] = sub
        return {"access_token": self.token(sub), "refresh_token": rt, "token_type": "bearer", "expires_in": 300}


def _handler(fake: FakeSupabase) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            return

        def _json(self, obj: Any, code: int = 200) -> None:
            body = json.dumps(obj).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            url = urlsplit(self.path)
            q = {k: v[0] for k, v in parse_qs(url.query).items()}
            if url.path == "/auth/v1/.well-known/jwks.json":
                return self._json({"keys": [fake.jwk()]})
            if url.path == "/auth/v1/authorize":
                fake.last_authorize = q
                if q.get("code_challenge_method") != "s256" or not q.get("code_challenge"):
                    return self._json({"error": "pkce required"}, 400)
                code = secrets.token_urlsafe(12)
                fake.codes[code] = q["code_challenge"]
                self.send_response(302)
                self.send_header("Location", q["redirect_to"] + "?" + urlencode({"code": code}))
                self.end_headers()
                return None
            return self._json({"error": "not found"}, 404)

        def do_POST(self) -> None:
            url = urlsplit(self.path)
            q = {k: v[0] for k, v in parse_qs(url.query).items()}
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))) or b"{}")
            if url.path == "/auth/v1/token" and q.get("grant_type") == "pkce":
                challenge = fake.codes.pop(body.get("auth_code", ""), None)
                verifier = body.get("code_verifier", "")
                digest = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
                if challenge is None or digest != challenge:
                    return self._json({"error": "invalid_grant", "error_description": "bad code or verifier"}, 400)
                return self._json(fake.issue("supabase-user-1"))
            if url.path == "/auth/v1/token" and q.get("grant_type") == "refresh_token":
                sub = fake.refresh.pop(body.get("refresh_token", ""), None)  # rotation: single use
                if sub is None:
                    return self._json({"error": "invalid_grant"}, 400)
                return self._json(fake.issue(sub))
            if url.path == "/auth/v1/logout":
                fake.revoked.append(self.headers.get("Authorization", ""))
                self.send_response(204)
                self.end_headers()
                return None
            return self._json({"error": "not found"}, 404)

    return Handler


@pytest.fixture
def supabase() -> Iterator[FakeSupabase]:
    fake = FakeSupabase(ec.generate_private_key(ec.SECP256R1()))
    server = HTTPServer(("127.0.0.1", 0), _handler(fake))
    fake.base = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield fake
    server.shutdown()
    server.server_close()


def _browser(url: str) -> None:
    """The user's browser: follow the authorize redirect to the loopback listener."""
    threading.Thread(target=lambda: httpx.get(url, follow_redirects=True, timeout=10), daemon=True).start()


def test_supabase_pkce_login_refresh_and_logout(supabase: FakeSupabase) -> None:
    provider = oauth.supabase(supabase.base, upstream="github", allow_http_loopback=True)
    assert provider.issuer == f"{supabase.base}/auth/v1"
    tokens = oauth.login(provider, open_browser=_browser, timeout_s=10)
    assert tokens.claims.subject == "supabase-user-1"
    assert tokens.claims.role == "authenticated"
    sent = supabase.last_authorize
    assert sent["provider"] == "github"
    assert sent["code_challenge_method"] == "s256"
    # Supabase forwards `state` upstream: the request is bound by the verifier and a random
    # callback path instead, so no `state` of ours is sent.
    assert "state" not in sent
    path = urlsplit(sent["redirect_to"]).path
    assert path.startswith("/callback/")
    assert len(path) > len("/callback/") + 16
    assert tokens.refresh_token is not None
    refreshed = oauth.refresh(provider, tokens.refresh_token)
    assert refreshed.claims.subject == "supabase-user-1"
    assert refreshed.refresh_token != tokens.refresh_token
    with pytest.raises(TokenError):  # rotated: the old refresh token is dead
        oauth.refresh(provider, tokens.refresh_token)
    oauth.revoke(provider, refreshed, refreshed.refresh_token)
    assert supabase.revoked == [f"Bearer {refreshed.access_token}"]
    assert tokens.access_token not in repr(tokens)


def test_a_token_with_another_role_is_refused(supabase: FakeSupabase, monkeypatch: pytest.MonkeyPatch) -> None:
    provider = oauth.supabase(supabase.base, allow_http_loopback=True)
    original = supabase.issue

    def anon(sub: str) -> dict[str, Any]:
        issued = original(sub)
        issued["access_token"] = supabase.token(sub, role="anon")
        return issued

    monkeypatch.setattr(supabase, "issue", anon)
    with pytest.raises(TokenError, match="role"):
        oauth.login(provider, open_browser=_browser, timeout_s=10)


def test_a_wrong_verifier_is_refused_by_the_exchange(supabase: FakeSupabase, monkeypatch: pytest.MonkeyPatch) -> None:
    provider = oauth.supabase(supabase.base, allow_http_loopback=True)
    monkeypatch.setattr(oauth, "pkce_pair", lambda: ("not-the-verifier-" + "x" * 40, "A" * 43))
    with pytest.raises(TokenError, match="refused"):
        oauth.login(provider, open_browser=_browser, timeout_s=10)


def test_plain_http_is_refused_for_a_real_project() -> None:
    with pytest.raises(TokenError, match="HTTPS"):
        oauth.supabase("http://project.supabase.example")
