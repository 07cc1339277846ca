"""JWT verification against a provider's JWKS: the one way a token is ever accepted.

- the signature, with the algorithm taken from a fixed allow-list (ES256, RS256), never
  from the token; the key's type must fit that algorithm;
- `iss`, `aud`, `exp`, `sub` required and checked strictly (small leeway), `role` too
  where the policy names one (Supabase: "authenticated");
- the JWKS is fetched over HTTPS, cached, and refetched at most once on an unknown `kid`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sentra_scan.errors import ExitCode, SentraError

ALLOWED_ALGORITHMS = ("ES256", "RS256")
_KTY = {"ES256": "EC", "RS256": "RSA"}


class TokenError(SentraError):
    """A token that must not be accepted, or a login that failed. The message never
    contains a token or a code."""

    exit_code = ExitCode.KEY  # a credential problem, like "not logged in"; never "internal error"


@dataclass(frozen=True)
class TokenPolicy:
    issuer: str
    audience: str
    algorithms: tuple[str, ...] = ALLOWED_ALGORITHMS
    role: str | None = "authenticated"
    leeway_s: int = 30

    def __post_init__(self) -> None:
        bad = [a for a in self.algorithms if a not in ALLOWED_ALGORITHMS]
        if bad or not self.algorithms:
            raise ValueError(f"algorithms must be a subset of {ALLOWED_ALGORITHMS}, got {self.algorithms}")


@dataclass(frozen=True)
class Claims:
    subject: str
    issuer: str
    audience: str | list[str]
    expires_at: int
    role: str | None
    raw: Mapping[str, Any] = field(repr=False)


Fetch = Callable[[str], Mapping[str, Any]]


def https_fetch(allow_http_loopback: bool = False, verify: Any = True) -> Fetch:
    """GET a JSON document; plain http only to a loopback address when explicitly allowed."""

    def fetch(url: str) -> Mapping[str, Any]:
        import httpx

        check_url(url, allow_http_loopback)
        try:
            resp = httpx.get(url, timeout=10.0, verify=verify, follow_redirects=False)
            resp.raise_for_status()
            data = resp.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise TokenError(f"cannot fetch {url}: {type(exc).__name__}") from None
        if not isinstance(data, dict):
            raise TokenError(f"{url} did not return a JSON object")
        return data

    return fetch


def check_url(url: str, allow_http_loopback: bool) -> None:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if parts.scheme == "https":
        return
    loopback = parts.hostname in ("127.0.0.1", "localhost", "::1")
    if parts.scheme == "http" and loopback and allow_http_loopback:
        return
    raise TokenError(f"refusing {parts.scheme or 'a'} URL {url!r}: HTTPS is required")


class JwksCache:
    """Keys by `kid`; one refetch on an unknown kid, at most every `min_refetch_s`."""

    def __init__(self, jwks_uri: str, fetch: Fetch, *, ttl_s: float = 3600, min_refetch_s: float = 30) -> None:
        self.jwks_uri = jwks_uri
        self.fetch = fetch
        self.ttl_s = ttl_s
        self.min_refetch_s = min_refetch_s
        self._keys: dict[str, Mapping[str, Any]] = {}
        self._fetched_at = float("-inf")
        self._lock = threading.Lock()

    def _refresh(self) -> None:
        doc = self.fetch(self.jwks_uri)
        keys = doc.get("keys")
        if not isinstance(keys, list):
            raise TokenError("the JWKS has no 'keys' list")
        self._keys = {str(k["kid"]): k for k in keys if isinstance(k, dict) and "kid" in k}
        self._fetched_at = time.monotonic()

    def key(self, kid: str) -> Mapping[str, Any]:
        with self._lock:
            age = time.monotonic() - self._fetched_at
            if age > self.ttl_s:
                self._refresh()
            elif kid not in self._keys and age > self.min_refetch_s:
                self._refresh()  # key rotation at the provider: refetch once
            jwk = self._keys.get(kid)
        if jwk is None:
            raise TokenError("token signed with an unknown key (kid not in the provider's JWKS)")
        return jwk


def verify_token(token: str, policy: TokenPolicy, jwks: JwksCache) -> Claims:
    import jwt

    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        raise TokenError("malformed token") from None
    alg = header.get("alg")
    if alg not in policy.algorithms:
        shown = repr(alg) if isinstance(alg, str) and len(alg) <= 16 else "(unreadable)"  # echo no long header text
        raise TokenError(f"token algorithm {shown} is not allowed (allowed: {', '.join(policy.algorithms)})")
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid:
        raise TokenError("token has no key id (kid)")
    jwk = jwks.key(kid)
    if jwk.get("kty") != _KTY[alg] or jwk.get("alg", alg) != alg or jwk.get("use", "sig") != "sig":
        raise TokenError("the provider's key does not fit the token's algorithm")
    try:
        key = jwt.PyJWK(dict(jwk), algorithm=alg).key
        claims = jwt.decode(
            token,
            key,
            algorithms=[alg],
            audience=policy.audience,
            issuer=policy.issuer,
            leeway=policy.leeway_s,
            options={"require": ["exp", "iss", "aud", "sub"], "verify_signature": True},
        )
    except jwt.ExpiredSignatureError:
        raise TokenError("token expired") from None
    except jwt.ImmatureSignatureError:
        raise TokenError("token not yet valid") from None
    except jwt.InvalidAudienceError:
        raise TokenError("token audience does not match") from None
    except jwt.InvalidIssuerError:
        raise TokenError("token issuer does not match") from None
    except jwt.MissingRequiredClaimError as exc:
        raise TokenError(f"token lacks the {exc.claim!r} claim") from None
    except jwt.PyJWTError as exc:
        raise TokenError(f"token rejected: {type(exc).__name__}") from None
    sub = claims.get("sub")
    if not isinstance(sub, str) or not sub:
        raise TokenError("token subject (sub) is empty")
    role = claims.get("role")
    if policy.role is not None and role != policy.role:
        raise TokenError(f"token role {role!r} is not {policy.role!r}")
    return Claims(sub, str(claims["iss"]), claims["aud"], int(claims["exp"]), role, claims)
