"""Forged and malformed tokens, each refused twice: by the client's `verify_token` against
the real provider's JWKS, and by a running `sentra serve` (401, a clear message, nothing
written but one auth-failed audit line). No token ever appears in a message or a log."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from sentra_scan.auth.verify import JwksCache, TokenError, TokenPolicy, check_url, https_fetch, verify_token
from tests.oidc.harness import (
    AUDIENCE,
    ROLE,
    KeySet,
    OidcProvider,
    SentraServer,
    claims_for,
    oidc_provider,
    sentra_server,
    write_server_config,
)

SUB = "0a2b3c4d-0000-4000-8000-0000000000d1"
PROJECT = "acme"
ENTRY = "dev/STRIPE_KEY"


@pytest.fixture(scope="module")
def provider(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OidcProvider]:
    with oidc_provider(tmp_path_factory.mktemp("oidc"), KeySet(), {}) as p:
        yield p


@pytest.fixture(scope="module")
def server(provider: OidcProvider, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SentraServer]:
    work = tmp_path_factory.mktemp("server")
    config = write_server_config(
        work / "server.yaml", provider.issuer, work / "data", members={SUB: {PROJECT: "admin"}}
    )
    with sentra_server(work, config) as s:
        yield s


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def raw_token(header: dict[str, Any], claims: dict[str, Any], sign: Callable[[bytes], bytes] | None = None) -> str:
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
    signature = sign(signing_input.encode()) if sign else b""
    return f"{signing_input}.{_b64(signature)}"


def _good(p: OidcProvider, **kw: Any) -> dict[str, Any]:
    return claims_for(p.issuer, SUB, **kw)


def _without(claims: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in claims.items() if k != key}


def _hs256_with_public_key(p: OidcProvider) -> str:
    pem = p.keys.es.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    header = {"alg": "HS256", "typ": "JWT", "kid": p.keys.es_kid}
    return raw_token(header, _good(p), lambda data: hmac.new(pem, data, hashlib.sha256).digest())


def _tampered(p: OidcProvider) -> str:
    head, _payload, sig = p.sign(SUB).split(".")
    forged = _b64(json.dumps({**_good(p), "sub": "the-admin"}).encode())
    return f"{head}.{forged}.{sig}"


def _other_rsa(p: OidcProvider) -> str:
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return jwt.encode(_good(p), stranger, algorithm="RS256", headers={"kid": p.keys.rs_kid})


def _other_ec(p: OidcProvider) -> str:
    stranger = ec.generate_private_key(ec.SECP256R1())
    return jwt.encode(_good(p), stranger, algorithm="ES256", headers={"kid": p.keys.es_kid})


# (id, token builder, what the refusal says)
FORGED: list[tuple[str, Callable[[OidcProvider], str], str]] = [
    (
        "alg-none",
        lambda p: raw_token({"alg": "none", "kid": p.keys.es_kid}, _good(p)),
        "algorithm 'none' is not allowed",
    ),
    ("alg-none-no-kid", lambda p: raw_token({"alg": "none"}, _good(p)), "algorithm 'none' is not allowed"),
    ("hs256-public-key-as-secret", _hs256_with_public_key, "algorithm 'HS256' is not allowed"),
    ("unknown-kid", lambda p: p.keys.sign(_good(p), kid="not-in-the-jwks"), "unknown key"),
    ("no-kid", lambda p: jwt.encode(_good(p), p.keys.es, algorithm="ES256"), "no key id"),
    ("expired", lambda p: p.sign(SUB, ttl=-120), "token expired"),
    ("not-yet-valid-nbf", lambda p: p.keys.sign(_good(p, nbf=int(time.time()) + 600)), "not yet valid"),
    ("issued-in-the-future", lambda p: p.keys.sign(_good(p, iat=int(time.time()) + 600)), "not yet valid"),
    ("wrong-iss", lambda p: p.keys.sign({**_good(p), "iss": "https://evil.example.test"}), "issuer does not match"),
    ("missing-iss", lambda p: p.keys.sign(_without(_good(p), "iss")), "lacks the 'iss' claim"),
    ("wrong-aud", lambda p: p.keys.sign({**_good(p), "aud": "another-api"}), "audience does not match"),
    ("missing-aud", lambda p: p.keys.sign(_without(_good(p), "aud")), "lacks the 'aud' claim"),
    ("missing-sub", lambda p: p.keys.sign(_without(_good(p), "sub")), "lacks the 'sub' claim"),
    ("empty-sub", lambda p: p.keys.sign({**_good(p), "sub": ""}), "subject (sub) is empty"),
    ("wrong-role", lambda p: p.keys.sign({**_good(p), "role": "service_role"}), "role 'service_role'"),
    ("missing-role", lambda p: p.keys.sign(_without(_good(p), "role")), "role None"),
    ("missing-exp", lambda p: p.keys.sign(_without(_good(p), "exp")), "lacks the 'exp' claim"),
    ("tampered-payload", _tampered, "InvalidSignatureError"),
    ("truncated", lambda p: p.sign(SUB)[:-30], "token rejected"),
    ("truncated-to-two-parts", lambda p: p.sign(SUB).rsplit(".", 1)[0], "malformed token"),
    ("garbage", lambda _p: "garbage-that-is-no-jwt", "malformed token"),
    ("garbage-three-parts", lambda _p: "aGVsbG8.d29ybGQ.IQ", "malformed token"),
    ("rs256-key-not-in-jwks", _other_rsa, "InvalidSignatureError"),
    ("es256-key-not-in-jwks", _other_ec, "InvalidSignatureError"),
    ("es256-header-rsa-kid", lambda p: p.keys.sign(_good(p), kid=p.keys.rs_kid), "does not fit the token's algorithm"),
    ("rs256-header-ec-kid", lambda p: p.keys.sign(_good(p), alg="RS256", kid=p.keys.es_kid), "does not fit"),
    ("es384-not-allowed", lambda p: raw_token({"alg": "ES384", "kid": p.keys.es_kid}, _good(p)), "'ES384' is not"),
    ("long-alg-not-echoed", lambda p: raw_token({"alg": "A" * 500, "kid": "k"}, _good(p)), "(unreadable)"),
]


def client_verify(provider: OidcProvider, token: str, *, allow_http_loopback: bool = True) -> None:
    policy = TokenPolicy(issuer=provider.issuer, audience=AUDIENCE, role=ROLE)
    verify_token(token, policy, JwksCache(provider.jwks_uri, https_fetch(allow_http_loopback)))


def test_at_least_fifteen_forgeries() -> None:
    assert len(FORGED) >= 15
    assert len({f[0] for f in FORGED}) == len(FORGED)


def test_genuine_tokens_pass_both(provider: OidcProvider, server: SentraServer) -> None:
    """The controls: the same checks accept what the provider really signed (ES256 and RS256)."""
    for alg in ("ES256", "RS256"):
        token = provider.sign(SUB, alg=alg)
        client_verify(provider, token)
        resp = httpx.get(
            f"{server.url}/api/v1/projects/{PROJECT}/secrets",
            headers={"Authorization": f"Bearer {token}", "X-Sentra-Context": "dev"},
            timeout=10,
        )
        assert resp.status_code == 200, resp.text


def _state(server: SentraServer) -> dict[str, bytes]:
    return {
        str(p.relative_to(server.data_dir)): p.read_bytes()
        for p in sorted(server.data_dir.rglob("*"))
        if p.is_file() and p.name != "audit.jsonl"
    }


def _refused_by_server(server: SentraServer, token: str, message: str) -> None:
    before_state, before_audit = _state(server), server.audit()
    headers = {"Authorization": f"Bearer {token}", "X-Sentra-Context": "dev"}
    resp = httpx.put(
        f"{server.url}/api/v1/projects/{PROJECT}/secrets/{ENTRY}",
        json={"ciphertext": base64.b64encode(b"opaque").decode(), "version": 0, "meta": {}},
        headers=headers,
        timeout=10,
    )
    assert resp.status_code == 401, resp.text
    assert resp.json()["error"].startswith("unauthorized: ")
    assert message in resp.json()["error"]
    assert token not in resp.text
    assert _state(server) == before_state  # nothing written
    new = server.audit()[len(before_audit) :]
    assert [r["action"] for r in new] == ["auth-failed"]
    assert message in new[0]["reason"]
    assert server.audit()[: len(before_audit)] == before_audit


@pytest.mark.parametrize(("name", "build", "message"), FORGED, ids=[f[0] for f in FORGED])
def test_forged_token_refused_by_client_and_server(
    provider: OidcProvider, server: SentraServer, name: str, build: Callable[[OidcProvider], str], message: str
) -> None:
    token = build(provider)
    with pytest.raises(TokenError) as refused:
        client_verify(provider, token)
    assert message in refused.value.message
    assert token not in refused.value.message
    assert refused.value.exit_code == 6
    _refused_by_server(server, token, message)
    audit_text = (server.data_dir / "audit.jsonl").read_text()
    assert token not in audit_text
    assert token not in server.output()
    if "." in token:  # not even the signature or the payload alone
        for part in token.split(".")[1:]:
            if len(part) > 8:
                assert part not in audit_text


def test_no_credentials_and_unknown_schemes(server: SentraServer) -> None:
    for header in ("", "Basic dXNlcjpwYXNz", "Bearer", "ApiKey sentra_nope_nope"):
        headers = {"Authorization": header} if header else {}
        resp = httpx.get(f"{server.url}/api/v1/projects/{PROJECT}/secrets", headers=headers, timeout=10)
        assert resp.status_code == 401
        assert resp.json()["error"] == "unauthorized: missing or unknown credentials"


def test_jwks_over_plain_http_is_refused_without_the_loopback_allowance(provider: OidcProvider, tmp_path: Path) -> None:
    token = provider.sign(SUB)
    with pytest.raises(TokenError, match="HTTPS is required"):
        client_verify(provider, token, allow_http_loopback=False)
    with pytest.raises(TokenError, match="HTTPS is required"):  # never for another host, even when allowed
        check_url("http://sso.example.test/jwks", allow_http_loopback=True)

    config = write_server_config(
        tmp_path / "server.yaml",
        provider.issuer,
        tmp_path / "data",
        members={SUB: {PROJECT: "admin"}},
        allow_http_loopback=False,
    )
    with sentra_server(tmp_path, config) as strict:
        _refused_by_server(strict, token, "HTTPS is required")
        assert token not in strict.output()


def test_jwks_fetch_failure_is_a_refusal(tmp_path: Path) -> None:
    """A provider that is down: the token is refused (never accepted unverified)."""
    keys = KeySet()
    issuer = "http://127.0.0.1:9"  # discard port: nothing listens
    token = keys.sign(claims_for(issuer, SUB))
    policy = TokenPolicy(issuer=issuer, audience=AUDIENCE, role=ROLE)
    with pytest.raises(TokenError, match="cannot fetch"):
        verify_token(token, policy, JwksCache(issuer + "/jwks", https_fetch(True)))


def test_policy_allows_only_asymmetric_algorithms() -> None:
    for algs in (("HS256",), ("none",), ("ES256", "PS256"), ()):
        with pytest.raises(ValueError, match="subset"):
            TokenPolicy(issuer="https://x.test", audience=AUDIENCE, algorithms=algs)
