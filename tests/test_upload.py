"""`sentra secrets push|pull` against a running `sentra serve`, as real processes: with the
bearer token of a real login (OpenID provider + Secret Service) and with machine API keys.
Only ciphertext reaches the server; conflicts are reported (exit 7), never overwritten;
pulled entries must open with the store's own keys. Canary: no secret value, token or key
in anything the CLI, the server or the provider prints or the server writes."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from sentra_scan.auth.tokens import SERVICE
from sentra_scan.store import Store
from tests.helpers import Repo, canary_github_token, init_repo, sentra
from tests.oidc.harness import (
    KeySet,
    OidcProvider,
    SentraServer,
    cli_login,
    files_containing,
    keyring_items,
    oidc_provider,
    secret_service,
    sentra_server,
    write_server_config,
)

ALICE_SUB = "7d3e1f20-0000-4000-8000-0000000a11ce"
PASSWORD = "upload-test-password"
PROJECTS = ("acme", "conflicts", "verify", "machines")


@dataclass
class World:
    provider: OidcProvider
    server: SentraServer
    keyring: dict[str, str]
    session_config: Path  # XDG_CONFIG_HOME holding the session's provider settings
    printed: list[str] = field(default_factory=list)
    canaries: set[str] = field(default_factory=set)

    def env(self, key: str, *, session: bool = True, **extra: str) -> dict[str, str]:
        env = {**os.environ, "SENTRA_KEY": key, "SENTRA_ALLOW_HTTP_LOOPBACK": "1", "SENTRA_SERVER": self.server.url}
        env.pop("SENTRA_API_KEY", None)
        if session:
            env.update(
                XDG_CONFIG_HOME=str(self.session_config),
                DBUS_SESSION_BUS_ADDRESS=self.keyring["DBUS_SESSION_BUS_ADDRESS"],
                PYTHON_KEYRING_BACKEND=self.keyring["PYTHON_KEYRING_BACKEND"],
            )
        else:
            env["PYTHON_KEYRING_BACKEND"] = "keyring.backends.fail.Keyring"  # no session, no store
        return {**env, **extra}

    def run(self, args: list[str], repo: Repo, env: dict[str, str], value: str | None = None) -> Any:
        proc = sentra(args, repo.path, env=env, input=value.encode() if value is not None else None)
        self.printed += [proc.stdout, proc.stderr]
        return proc


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    work = tmp_path_factory.mktemp("upload")
    accounts = {"alice": {"password": PASSWORD, "sub": ALICE_SUB}}
    with (
        oidc_provider(work, KeySet(), accounts) as provider,
        secret_service(work) as keyring,
    ):
        members = {ALICE_SUB: dict.fromkeys(PROJECTS, "admin")}
        config = write_server_config(work / "server.yaml", provider.issuer, work / "data", members=members)
        with sentra_server(work, config) as server:
            session = work / "session-config"
            env = {
                **os.environ,
                "XDG_CONFIG_HOME": str(session),
                "SENTRA_ALLOW_HTTP_LOOPBACK": "1",
                "DBUS_SESSION_BUS_ADDRESS": keyring["DBUS_SESSION_BUS_ADDRESS"],
                "PYTHON_KEYRING_BACKEND": keyring["PYTHON_KEYRING_BACKEND"],
            }
            logged_in = cli_login(env, provider.issuer, "alice", PASSWORD, work)
            assert logged_in.returncode == 0, logged_in.stderr
            w = World(provider, server, keyring, session, [logged_in.stdout, logged_in.stderr])
            w.canaries.update(v for v in keyring_items(keyring, SERVICE).values() if len(v) > 20)
            assert w.canaries  # the session's tokens (chunks), to look for everywhere
            yield w
            # The canary, over everything this module's processes printed or the server wrote.
            printed = "\n".join([*w.printed, server.output(), provider.output()])
            for canary in w.canaries:
                assert canary not in printed, "a secret value, token or key was printed"
                assert files_containing(server.data_dir, canary.encode()) == [], "a canary reached the server"


def new_key() -> str:
    return base64.b64encode(os.urandom(32)).decode()


def value(seed: str) -> str:
    return canary_github_token(f"upload-{seed}")


def make_repo(world: World, path: Path, key: str, *, init: bool = False) -> Repo:
    repo = init_repo(path)
    world.canaries.add(key)
    if init:  # the keys now, before any entry
        proc = world.run(["secrets", "list"], repo, world.env(key))
        assert proc.returncode == 0, proc.stderr
    return repo


def set_value(world: World, repo: Repo, key: str, path: str, secret: str) -> None:
    world.canaries.add(secret)
    proc = world.run(["secrets", "set", path, "--value-stdin"], repo, world.env(key), secret)
    assert proc.returncode == 0, proc.stderr


def sealed(repo: Repo, path: str) -> str:
    for line in (repo.path / ".sentra" / "secrets.enc").read_text().splitlines():
        if line.startswith(path + " "):
            return line.split(" ", 1)[1]
    raise AssertionError(f"{path} not in the store")


@contextlib.contextmanager
def opened(repo: Repo, key: str) -> Iterator[Store]:
    """The repository's store, opened in this process with its key."""
    from sentra_scan.keys import KeySource
    from sentra_scan.state import open_state

    state = open_state(repo.path, source=KeySource("key", "", key), create=False)
    try:
        yield Store.open(repo.path / ".sentra" / "secrets.enc", state.keys)
    finally:
        state.close()


def holds(repo: Repo, key: str, path: str, secret: str) -> bool:
    """The store opens this entry to this value (checked in-process: never printed)."""
    with opened(repo, key) as store:
        return store.get(path) == secret


def names(repo: Repo, key: str) -> list[str]:
    with opened(repo, key) as store:
        return store.names()


def server_entry(world: World, project: str, path: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((world.server.data_dir / "projects" / project / f"{path}.json").read_text())
    return data


def push(world: World, repo: Repo, key: str, project: str, **env: str) -> subprocess.CompletedProcess[str]:
    session = env.pop("session", "yes") == "yes"
    proc: subprocess.CompletedProcess[str] = world.run(
        ["secrets", "push", "--env", "dev", "--project", project], repo, world.env(key, session=session, **env)
    )
    return proc


def pull(world: World, repo: Repo, key: str, project: str) -> subprocess.CompletedProcess[str]:
    proc: subprocess.CompletedProcess[str] = world.run(
        ["secrets", "pull", "--env", "dev", "--project", project], repo, world.env(key)
    )
    return proc


def test_push_and_pull_ciphertext_only_with_a_bearer_session(world: World, tmp_path: Path) -> None:
    key = new_key()
    alice = make_repo(world, tmp_path / "alice", key, init=True)
    teammate = Repo(Path(shutil.copytree(alice.path, tmp_path / "teammate", symlinks=True)))  # same keys, empty
    stripe, db, prod = value("stripe"), value("db"), value("prod")
    set_value(world, alice, key, "dev/STRIPE_KEY", stripe)
    set_value(world, alice, key, "dev/DB_URL", db)
    set_value(world, alice, key, "prod/DB_PASSWORD", prod)

    pushed = push(world, alice, key, "acme")
    assert pushed.returncode == 0, pushed.stderr
    assert "push: 2 entries, 0 unchanged" in pushed.stdout

    # What the server holds is the store's own sealed bytes: ciphertext, nothing else.
    for path in ("dev/STRIPE_KEY", "dev/DB_URL"):
        entry = server_entry(world, "acme", path)
        assert entry["ciphertext"] == sealed(alice, path)
        assert entry["version"] == 1
        assert set(entry["meta"]) == {"store_id", "format"}
    assert not (world.server.data_dir / "projects" / "acme" / "prod").exists()  # dev flow: dev/ only
    for secret in (stripe, db, prod):
        for form in (secret.encode(), base64.b64encode(secret.encode())):
            assert files_containing(world.server.data_dir, form) == []
    assert files_containing(world.server.data_dir, key.encode()) == []
    puts = [r for r in world.server.audit() if r.get("project") == "acme" and r["action"] == "put"]
    assert {(r["path"], r["subject"]) for r in puts} == {("dev/STRIPE_KEY", ALICE_SUB), ("dev/DB_URL", ALICE_SUB)}

    again = push(world, alice, key, "acme")
    assert again.returncode == 0, again.stderr
    assert "push: 0 entries, 2 unchanged" in again.stdout

    pulled = pull(world, teammate, key, "acme")
    assert pulled.returncode == 0, pulled.stderr
    assert "pull: 2 entries, 0 unchanged" in pulled.stdout
    assert holds(teammate, key, "dev/STRIPE_KEY", stripe)
    assert holds(teammate, key, "dev/DB_URL", db)
    assert "pull: 0 entries, 2 unchanged" in pull(world, teammate, key, "acme").stdout
    assert names(teammate, key) == ["dev/DB_URL", "dev/STRIPE_KEY"]


def test_conflicts_are_reported_and_nothing_is_overwritten(world: World, tmp_path: Path) -> None:
    key = new_key()
    alice = make_repo(world, tmp_path / "alice", key)
    set_value(world, alice, key, "dev/API_TOKEN", value("v1"))
    assert push(world, alice, key, "conflicts").returncode == 0
    bob = Repo(Path(shutil.copytree(alice.path, tmp_path / "bob", symlinks=True)))  # synced at version 1

    set_value(world, alice, key, "dev/API_TOKEN", value("alice-v2"))
    assert "push: 1 entries" in push(world, alice, key, "conflicts").stdout
    assert server_entry(world, "conflicts", "dev/API_TOKEN")["version"] == 2

    set_value(world, bob, key, "dev/API_TOKEN", value("bob-v2"))
    refused = push(world, bob, key, "conflicts")
    assert refused.returncode == 7
    assert "conflict: dev/API_TOKEN: the server and this store both changed it; nothing overwritten" in refused.stderr
    entry = server_entry(world, "conflicts", "dev/API_TOKEN")
    assert (entry["version"], entry["ciphertext"]) == (2, sealed(alice, "dev/API_TOKEN"))

    # Bob's unpushed change is not overwritten by a pull either.
    bob_pull = pull(world, bob, key, "conflicts")
    assert bob_pull.returncode == 7
    assert "conflict: dev/API_TOKEN" in bob_pull.stderr
    assert holds(bob, key, "dev/API_TOKEN", value("bob-v2"))

    # Resolved by dropping the local change: the pull takes Alice's version.
    assert world.run(["secrets", "rm", "dev/API_TOKEN"], bob, world.env(key)).returncode == 0
    assert pull(world, bob, key, "conflicts").returncode == 0
    assert holds(bob, key, "dev/API_TOKEN", value("alice-v2"))
    assert "push: 0 entries, 1 unchanged" in push(world, bob, key, "conflicts").stdout

    # A clean fast-forward: Alice changes nothing locally and pulls Bob's next version.
    set_value(world, bob, key, "dev/API_TOKEN", value("bob-v3"))
    assert push(world, bob, key, "conflicts").returncode == 0
    assert "pull: 1 entries" in pull(world, alice, key, "conflicts").stdout
    assert holds(alice, key, "dev/API_TOKEN", value("bob-v3"))


def test_pull_accepts_only_what_opens_with_the_store_keys(world: World, tmp_path: Path) -> None:
    key, foreign_key = new_key(), new_key()
    alice = make_repo(world, tmp_path / "alice", key)
    mallory = make_repo(world, tmp_path / "mallory", foreign_key)
    set_value(world, mallory, foreign_key, "dev/FOREIGN", value("foreign"))
    assert push(world, mallory, foreign_key, "verify").returncode == 0

    set_value(world, alice, key, "dev/OWN", value("own"))
    store_file = alice.path / ".sentra" / "secrets.enc"
    before = store_file.read_bytes()
    refused = pull(world, alice, key, "verify")
    assert refused.returncode == 6
    assert names(alice, key) == ["dev/OWN"]
    assert store_file.read_bytes() == before
    assert "internal error" not in refused.stderr

    # Tampered at rest on the server: refused as well, the local entry kept.
    world.server.data_dir.joinpath("projects", "verify", "dev", "FOREIGN.json").unlink()
    assert push(world, alice, key, "verify").returncode == 0
    entry_file = world.server.data_dir / "projects" / "verify" / "dev" / "OWN.json"
    doc = json.loads(entry_file.read_text())
    blob = bytearray(base64.b64decode(doc["ciphertext"]))
    blob[-1] ^= 0x01
    doc.update(ciphertext=base64.b64encode(bytes(blob)).decode(), version=2)
    entry_file.write_text(json.dumps(doc))
    tampered = pull(world, alice, key, "verify")
    assert tampered.returncode == 6
    assert holds(alice, key, "dev/OWN", value("own"))


def test_machine_api_keys_push_without_a_session(world: World, tmp_path: Path) -> None:
    admin = {"Authorization": f"Bearer {world.provider.sign(ALICE_SUB)}"}
    keys_url = f"{world.server.url}/api/v1/projects/machines/api-keys"

    def make_key(body: dict[str, Any]) -> tuple[str, str]:
        made = httpx.post(keys_url, json=body, headers=admin, timeout=10)
        assert made.status_code == 201, made.text
        world.canaries.add(made.json()["key"])
        return made.json()["id"], made.json()["key"]

    _narrow_id, narrow = make_key({"name": "ci-a", "role": "developer", "prefixes": ["dev/A"]})
    wide_id, wide = make_key({"name": "ci", "role": "developer", "prefixes": ["dev/"]})

    key = new_key()
    repo = make_repo(world, tmp_path / "ci", key)
    set_value(world, repo, key, "dev/A", value("a"))
    set_value(world, repo, key, "dev/B", value("b"))

    partly = push(world, repo, key, "machines", session="no", SENTRA_API_KEY=narrow)
    assert partly.returncode == 7
    assert "server refused: HTTP 403 forbidden: path not allowed in this context" in partly.stderr
    assert server_entry(world, "machines", "dev/A")["version"] == 1
    # What did go through is remembered: the next push sees dev/A as its own, not as a conflict.
    done = push(world, repo, key, "machines", session="no", SENTRA_API_KEY=wide)
    assert done.returncode == 0, done.stderr
    assert "push: 1 entries, 1 unchanged" in done.stdout
    subjects = {r["subject"] for r in world.server.audit() if r.get("project") == "machines" and r["action"] == "put"}
    assert subjects == {f"apikey:{_narrow_id}", f"apikey:{wide_id}"}

    assert httpx.delete(f"{keys_url}/{wide_id}", headers=admin, timeout=10).status_code == 204
    set_value(world, repo, key, "dev/B", value("b2"))
    revoked = push(world, repo, key, "machines", session="no", SENTRA_API_KEY=wide)
    assert revoked.returncode == 7
    assert "HTTP 401" in revoked.stderr

    no_session = push(world, repo, key, "machines", session="no")
    assert no_session.returncode == 6
    assert "no OS credential store" in no_session.stderr or "not logged in" in no_session.stderr

    plain = push(world, repo, key, "machines", SENTRA_SERVER="http://sentra.example.test:8600")
    assert plain.returncode != 0
    assert "HTTPS is required" in plain.stderr
