"""`sentra serve` as a real process on 127.0.0.1, with bearer tokens the real OpenID
provider's JWKS accepts (tests/oidc/provider.js) and API keys: every endpoint, roles, path
rules, the development overlay, the failure limiter, the bind guard, and concurrent
read-modify-write cycles with no lost update."""

from __future__ import annotations

import base64
import os
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.oidc.harness import (
    KeySet,
    OidcProvider,
    SentraServer,
    oidc_provider,
    sentra_cmd,
    sentra_server,
    write_server_config,
)

PROJECT = "acme"
ADMIN, MAINTAINER, DEVELOPER, VIEWER = "sub-admin", "sub-maintainer", "sub-developer", "sub-viewer"
OUTSIDER, OTHER_ADMIN = "sub-outsider", "sub-other-admin"
MEMBERS = {
    ADMIN: {PROJECT: "admin"},
    MAINTAINER: {PROJECT: "maintainer"},
    DEVELOPER: {PROJECT: "developer"},
    VIEWER: {PROJECT: "viewer"},
    OTHER_ADMIN: {"other": "admin"},
}
ROLE_PREFIXES = {"developer": ["dev/", "staging/"]}
MINTED: set[str] = set()  # every bearer token and API key used here, for the canary at teardown


def ct(data: bytes) -> str:
    return base64.b64encode(data).decode()


@pytest.fixture(scope="module")
def provider(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OidcProvider]:
    with oidc_provider(tmp_path_factory.mktemp("oidc"), KeySet(), {}) as p:
        yield p


@pytest.fixture(scope="module")
def server(provider: OidcProvider, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SentraServer]:
    work = tmp_path_factory.mktemp("server")
    config = write_server_config(
        work / "server.yaml", provider.issuer, work / "data", members=MEMBERS, role_prefixes=ROLE_PREFIXES
    )
    with sentra_server(work, config) as s:
        yield s
        written = "\n".join(p.read_text(errors="replace") for p in s.data_dir.rglob("*") if p.is_file())
        for credential in MINTED:
            assert credential not in s.output(), "a token or key was printed by the server"
            assert credential not in written, "a token or key was written by the server"


class Api:
    """One identity's HTTP client for the project's endpoints."""

    def __init__(self, server: SentraServer, auth: str, context: str | None = "dev", project: str = PROJECT):
        MINTED.add(auth.split(" ", 1)[1])
        headers = {"Authorization": auth}
        if context is not None:
            headers["X-Sentra-Context"] = context
        self.client = httpx.Client(base_url=f"{server.url}/api/v1/projects/{project}", headers=headers, timeout=15)

    def __enter__(self) -> Api:
        return self

    def __exit__(self, *exc: object) -> None:
        self.client.close()

    def get(self, path: str) -> httpx.Response:
        return self.client.get(f"/secrets/{path}")

    def put(self, path: str, data: bytes, version: int, meta: dict[str, Any] | None = None) -> httpx.Response:
        return self.client.put(
            f"/secrets/{path}", json={"ciphertext": ct(data), "version": version, "meta": meta or {}}
        )

    def delete(self, path: str, version: int | None) -> httpx.Response:
        return self.client.delete(f"/secrets/{path}", params={} if version is None else {"version": version})

    def list(self) -> httpx.Response:
        return self.client.get("/secrets")


def bearer(provider: OidcProvider, sub: str) -> str:
    return f"Bearer {provider.sign(sub)}"


def api(server: SentraServer, provider: OidcProvider, sub: str, context: str | None = "dev", **kw: Any) -> Api:
    return Api(server, bearer(provider, sub), context, **kw)


def test_health_and_no_generic_passthrough(server: SentraServer) -> None:
    assert httpx.get(f"{server.url}/api/v1/health", timeout=5).json() == {"status": "ok"}
    for method, path in [
        ("GET", "/api/v1/sql"),
        ("POST", "/api/v1/query"),
        ("GET", "/api/v1/projects"),
        ("GET", "/api/v1/projects/acme"),
        ("GET", "/"),
    ]:
        assert httpx.request(method, server.url + path, timeout=5).status_code == 404, path
    # An explicit method list per endpoint: no POST on secrets, no PATCH anywhere.
    assert httpx.post(f"{server.url}/api/v1/projects/acme/secrets", timeout=5).status_code == 405
    assert httpx.patch(f"{server.url}/api/v1/projects/acme/secrets/dev/A", timeout=5).status_code == 405


def test_entry_lifecycle_versions_conflicts_and_audit(server: SentraServer, provider: OidcProvider) -> None:
    with api(server, provider, ADMIN) as admin:
        assert admin.list().json() == {"entries": []}
        created = admin.put("dev/LIFE", b"sealed-1", 0, {"store_id": "s1"})
        assert created.status_code == 200, created.text
        assert created.json() == {"path": "dev/LIFE", "version": 1}
        stale = admin.put("dev/LIFE", b"sealed-x", 0)
        assert stale.status_code == 409
        assert stale.json() == {"error": "version conflict", "current": 1}
        assert admin.put("dev/LIFE", b"sealed-x", 7).status_code == 409
        assert admin.put("dev/LIFE", b"sealed-2", 1).json()["version"] == 2
        got = admin.get("dev/LIFE").json()
        assert got == {"path": "dev/LIFE", "version": 2, "ciphertext": ct(b"sealed-2"), "meta": {}}
        assert {"path": "dev/LIFE", "version": 2} in admin.list().json()["entries"]

        assert admin.delete("dev/LIFE", None).status_code == 400
        conflict = admin.delete("dev/LIFE", 1)
        assert conflict.status_code == 409
        assert conflict.json()["current"] == 2
        assert admin.get("dev/LIFE").status_code == 200  # still there
        assert admin.delete("dev/LIFE", 2).status_code == 204
        assert admin.get("dev/LIFE").status_code == 404
        assert admin.delete("dev/LIFE", 2).status_code == 409
        assert admin.put("dev/LIFE", b"sealed-3", 0).json()["version"] == 1  # a new life starts at 1

        records = [r for r in admin.client.get("/audit").json()["records"] if r.get("path") == "dev/LIFE"]
        assert [(r["action"], r["version"]) for r in records] == [("put", 1), ("put", 2), ("delete", 2), ("put", 1)]
        assert all(r["subject"] == ADMIN for r in records)
    audit_text = (server.data_dir / "audit.jsonl").read_text()
    for value in (b"sealed-1", b"sealed-2", b"sealed-3"):
        assert ct(value) not in audit_text


@pytest.mark.parametrize(
    ("path", "body", "status"),
    [
        ("dev/BAD", {"ciphertext": "not base64!!", "version": 0}, 400),
        ("dev/BAD", {"version": 0}, 400),
        ("dev/BAD", {"ciphertext": ct(b"x"), "version": "one"}, 400),
        ("dev/BAD", {"ciphertext": ct(b"x"), "version": 0, "meta": ["not", "an", "object"]}, 400),
        ("dev/BAD", {"ciphertext": ct(b"x"), "version": 0, "meta": {"pad": "m" * 5000}}, 400),
        ("dev/BAD", ["a", "list"], 400),
        ("dev/BAD", {"ciphertext": ct(b"x" * 300_000), "version": 0}, 413),
        ("ONESEGMENT", {"ciphertext": ct(b"x"), "version": 0}, 400),
        ("dev/..%2F..%2Fetc", {"ciphertext": ct(b"x"), "version": 0}, 400),
        ("dev/sp ace", {"ciphertext": ct(b"x"), "version": 0}, 400),
    ],
)
def test_malformed_writes_are_refused(
    server: SentraServer, provider: OidcProvider, path: str, body: Any, status: int
) -> None:
    with api(server, provider, ADMIN) as admin:
        resp = admin.client.put(f"/secrets/{path}", json=body)
        assert resp.status_code == status, resp.text
        assert admin.get("dev/BAD").status_code == 404
    assert not list(server.data_dir.rglob("BAD*"))


def test_roles_least_privilege(server: SentraServer, provider: OidcProvider) -> None:
    with api(server, provider, ADMIN) as admin:
        assert admin.put("dev/ROLES", b"r1", 0).status_code == 200
    with api(server, provider, VIEWER) as viewer:
        assert viewer.list().status_code == 200
        assert viewer.get("dev/ROLES").status_code == 403
        assert viewer.put("dev/ROLES", b"v", 1).status_code == 403
    with api(server, provider, DEVELOPER) as dev:
        assert dev.get("dev/ROLES").status_code == 200
        assert dev.put("dev/ROLES", b"r2", 1).status_code == 200
        denied = dev.delete("dev/ROLES", 2)
        assert denied.status_code == 403
        assert "secrets:delete" in denied.json()["error"]
        assert dev.client.get("/audit").status_code == 403
        assert dev.client.get("/api-keys").status_code == 403
    with api(server, provider, MAINTAINER) as maint:
        assert maint.client.get("/audit").status_code == 200
        assert maint.client.get("/api-keys").status_code == 403
        assert maint.client.post("/api-keys", json={"name": "m", "role": "viewer"}).status_code == 403
        assert maint.delete("dev/ROLES", 2).status_code == 204
    for sub in (OUTSIDER, OTHER_ADMIN):  # a valid token, but no role in this project
        with api(server, provider, sub) as stranger:
            assert stranger.list().status_code == 403
            assert stranger.put("dev/ROLES", b"s", 0).status_code == 403
    with api(server, provider, ADMIN, project="other") as wrong_project:  # admin of acme only
        assert wrong_project.list().status_code == 403
    with api(server, provider, ADMIN, project="bad name!") as bad:
        assert bad.list().status_code in (400, 404)
    denials = [r for r in server.audit() if r["action"] == "denied"]
    assert {r["subject"] for r in denials} >= {VIEWER, DEVELOPER, MAINTAINER, OUTSIDER, OTHER_ADMIN}


def test_path_rules_by_context_and_role(server: SentraServer, provider: OidcProvider) -> None:
    with api(server, provider, ADMIN, context="prod") as admin_prod:
        assert admin_prod.put("prod/DB_PASSWORD", b"p1", 0).status_code == 200
        assert admin_prod.get("prod/DB_PASSWORD").status_code == 200
        assert admin_prod.put("dev/FROM_PROD", b"x", 0).status_code == 403  # prod flow, dev path
    with api(server, provider, ADMIN, context="dev") as admin_dev:
        assert admin_dev.put("dev/PATHS", b"d1", 0).status_code == 200
        refused = admin_dev.get("prod/DB_PASSWORD")
        assert refused.status_code == 403
        assert "path not allowed in this context" in refused.json()["error"]
        assert admin_dev.put("prod/DB_PASSWORD", b"x", 1).status_code == 403
        assert admin_dev.delete("prod/DB_PASSWORD", 1).status_code == 403
        paths = {e["path"] for e in admin_dev.list().json()["entries"]}
        assert "dev/PATHS" in paths
        assert not any(p.startswith("prod/") for p in paths)
    for context in (None, "qa", "prod/"):
        with api(server, provider, ADMIN, context=context) as odd:
            assert odd.get("dev/PATHS").status_code == 403
            assert odd.list().json()["entries"] == []
    with api(server, provider, DEVELOPER, context="prod") as dev_prod:  # narrowed by role_prefixes
        assert dev_prod.get("prod/DB_PASSWORD").status_code == 403
        assert dev_prod.put("prod/NEW", b"x", 0).status_code == 403
        assert dev_prod.list().json()["entries"] == []
    with api(server, provider, DEVELOPER, context="staging") as dev_staging:
        assert dev_staging.put("staging/API", b"s1", 0).status_code == 200
    with api(server, provider, ADMIN, context="prod") as admin_prod:
        assert admin_prod.get("prod/DB_PASSWORD").json()["ciphertext"] == ct(b"p1")  # untouched


def test_api_keys_create_use_scope_revoke(server: SentraServer, provider: OidcProvider) -> None:
    with api(server, provider, ADMIN) as admin:
        assert admin.put("dev/CI_TOKEN", b"c1", 0).status_code == 200
        made = admin.client.post("/api-keys", json={"name": "ci", "role": "developer", "prefixes": ["dev/"]})
        assert made.status_code == 201, made.text
        key_id, key = made.json()["id"], made.json()["key"]
        assert key.startswith(f"sentra_{key_id}_")
        listed = admin.client.get("/api-keys").json()["keys"]
        mine = [k for k in listed if k["id"] == key_id]
        assert len(mine) == 1
        assert mine[0]["role"] == "developer"
        assert mine[0]["created_by"] == ADMIN
        assert "hash" not in mine[0]
        assert key not in str(listed)

        # Stored hashed: the secret part is nowhere on the server's disk.
        secret_part = key.split("_", 2)[2]
        for f in server.data_dir.rglob("*"):
            if f.is_file():
                assert secret_part.encode() not in f.read_bytes(), f

        with Api(server, f"ApiKey {key}", "dev") as ci:
            assert ci.get("dev/CI_TOKEN").status_code == 200
            assert ci.put("dev/CI_TOKEN", b"c2", 1).status_code == 200
            assert ci.delete("dev/CI_TOKEN", 2).status_code == 403  # developer
            assert ci.client.get("/api-keys").status_code == 403
        with Api(server, f"ApiKey {key}", "prod") as ci_prod:  # its own prefixes: dev/ only
            assert ci_prod.get("prod/DB_PASSWORD").status_code == 403
        with Api(server, f"ApiKey {key}", "dev", project="other") as elsewhere:
            assert elsewhere.list().status_code == 403
        with Api(server, f"ApiKey sentra_{key_id}_wrong-secret", "dev") as wrong:
            assert wrong.list().status_code == 401

        for body in (
            {"name": "x", "role": "root"},
            {"name": "x", "role": "admin", "prefixes": "prod/"},
            {"name": "x", "role": "viewer", "prefixes": [""]},
            {"role": "viewer"},
        ):
            assert admin.client.post("/api-keys", json=body).status_code in (400, 403), body

        # An admin key scoped to dev/ cannot mint a key that reaches further.
        scoped = admin.client.post("/api-keys", json={"name": "scoped", "role": "admin", "prefixes": ["dev/"]}).json()
        with Api(server, f"ApiKey {scoped['key']}", "dev") as scoped_admin:
            wider = scoped_admin.client.post("/api-keys", json={"name": "w", "role": "viewer", "prefixes": []})
            assert wider.status_code == 403
            assert "cannot reach paths" in wider.json()["error"]
            prod = scoped_admin.client.post("/api-keys", json={"name": "p", "role": "viewer", "prefixes": ["prod/"]})
            assert prod.status_code == 403
            narrow = scoped_admin.client.post(
                "/api-keys", json={"name": "n", "role": "developer", "prefixes": ["dev/app/"]}
            )
            assert narrow.status_code == 201

        assert admin.client.delete("/api-keys/000000000000").status_code == 404
        assert admin.client.delete(f"/api-keys/{key_id}").status_code == 204
        with Api(server, f"ApiKey {key}", "dev") as revoked:
            refused = revoked.get("dev/CI_TOKEN")
            assert refused.status_code == 401
            assert key not in refused.text
        assert next(k for k in admin.client.get("/api-keys").json()["keys"] if k["id"] == key_id)["revoked"] is True
        actions = [r["action"] for r in admin.client.get("/audit").json()["records"]]
        assert "apikey-create" in actions
        assert "apikey-revoke" in actions
    assert key not in server.output()
    assert key not in (server.data_dir / "audit.jsonl").read_text()


def test_dev_overlay_is_off_by_default(server: SentraServer, provider: OidcProvider) -> None:
    for path in ("/api/v1/local/whoami", "/api/v1/local/anything/else"):
        resp = httpx.get(server.url + path, headers={"Authorization": bearer(provider, ADMIN)}, timeout=5)
        assert resp.status_code == 404
        assert "development overlay is disabled" in resp.json()["error"]


@pytest.fixture(scope="module")
def strict_server(provider: OidcProvider, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SentraServer]:
    """A server with the development overlay on and a tight failure limiter."""
    work = tmp_path_factory.mktemp("strict")
    config = write_server_config(
        work / "server.yaml",
        provider.issuer,
        work / "data",
        members=MEMBERS,
        limits={"window_s": 60, "slow_after": 2, "block_after": 6, "delay_s": 0.15},
    )
    with sentra_server(work, config, "--dev-overlay") as s:
        yield s


def test_dev_overlay_when_enabled(strict_server: SentraServer, provider: OidcProvider) -> None:
    resp = httpx.get(
        f"{strict_server.url}/api/v1/local/whoami", headers={"Authorization": bearer(provider, ADMIN)}, timeout=5
    )
    assert resp.status_code == 200
    assert resp.json() == {"subject": ADMIN, "roles": {PROJECT: "admin"}}
    assert httpx.get(f"{strict_server.url}/api/v1/local/whoami", timeout=5).status_code == 401
    assert httpx.get(f"{strict_server.url}/api/v1/local/other", timeout=5).status_code == 404


def test_failure_limiter_slows_then_refuses(strict_server: SentraServer, provider: OidcProvider) -> None:
    url = f"{strict_server.url}/api/v1/projects/{PROJECT}/secrets"
    bad = {"Authorization": "Bearer " + provider.sign(ADMIN, ttl=-300), "X-Sentra-Context": "dev"}
    prior = len([r for r in strict_server.audit() if r["action"] in ("auth-failed", "denied")])
    assert prior < 2  # this client's earlier failures in the window (other tests on this server)
    timings, statuses = [], []
    for _ in range(8):
        started = time.monotonic()
        statuses.append(httpx.get(url, headers=bad, timeout=10).status_code)
        timings.append(time.monotonic() - started)
    allowed = 6 - prior  # block_after
    assert statuses == [401] * allowed + [429] * (8 - allowed)
    slowest = timings[allowed - 1]
    for i, took in enumerate(timings[:allowed]):
        failures = prior + i + 1
        if failures <= 2:  # slow_after
            assert took < slowest
        else:
            assert took >= 0.15 * (failures - 2) - 0.02  # slowed, more and more
    assert slowest >= 0.15 * (6 - 2) - 0.02
    assert max(timings[allowed:]) < slowest  # refused at once, without the delay
    # Blocked means blocked: even a valid token from this client waits out the window.
    good = {"Authorization": bearer(provider, ADMIN), "X-Sentra-Context": "dev"}
    blocked = httpx.get(url, headers=good, timeout=10)
    assert blocked.status_code == 429
    assert "too many failed requests" in blocked.json()["error"]
    failed = [r for r in strict_server.audit() if r["action"] == "auth-failed"]
    assert [r["reason"] for r in failed[-allowed:]] == ["token expired"] * allowed  # 429s are not audited


def test_non_loopback_bind_needs_tls_or_a_proxy(provider: OidcProvider, tmp_path: Path) -> None:
    """(tests/test_serve_bind.py covers more addresses, TLS and --behind-proxy.)"""
    host = "0.0.0.0"  # noqa: S104 (refused, never bound)
    config = write_server_config(tmp_path / "server.yaml", provider.issuer, tmp_path / "data")
    proc = subprocess.run(
        sentra_cmd("serve", "--config", str(config), "--host", host, "--port", "1"),
        capture_output=True,
        text=True,
        timeout=30,
        env=dict(os.environ),
    )
    assert proc.returncode == 2
    assert f"refusing to serve plain HTTP on {host}" in proc.stderr
    assert "--behind-proxy" in proc.stderr


def test_concurrent_read_modify_write_loses_no_update(server: SentraServer, provider: OidcProvider) -> None:
    """Several clients, each a loop of read, modify, write-with-version, retried on 409."""
    paths = ["dev/RACE_A", "dev/RACE_B"]
    workers, cycles = 6, 8
    successes = dict.fromkeys(paths, 0)
    statuses: list[int] = []
    lock = threading.Lock()
    errors: list[str] = []

    def work(n: int) -> None:
        try:
            with api(server, provider, ADMIN if n % 2 else DEVELOPER) as client:
                for i in range(cycles):
                    path = paths[(n + i) % len(paths)]
                    for _attempt in range(60):
                        got = client.get(path)
                        version = got.json()["version"] if got.status_code == 200 else 0
                        put = client.put(path, f"w{n}-{i}".encode(), version)
                        with lock:
                            statuses.extend([got.status_code, put.status_code])
                        if put.status_code == 200:
                            with lock:
                                successes[path] += 1
                            break
                        if put.status_code != 409:
                            raise AssertionError(f"unexpected {put.status_code}: {put.text}")
                    else:
                        raise AssertionError("no write got through in 60 attempts")
        except Exception as exc:
            errors.append(repr(exc))

    started = time.monotonic()
    threads = [threading.Thread(target=work, args=(n,)) for n in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not any(t.is_alive() for t in threads), "clients still running after 60s"
    assert time.monotonic() - started < 60
    assert errors == []
    assert not [s for s in statuses if s >= 500]
    assert set(statuses) <= {200, 404, 409}
    assert sum(successes.values()) == workers * cycles
    with api(server, provider, ADMIN) as admin:
        for path in paths:
            assert admin.get(path).json()["version"] == successes[path]  # no lost update
