"""Real parts for the identity and upload tests, each started on 127.0.0.1 and stopped at
teardown with bounded waits:

- `OidcProvider`: panva's `oidc-provider` (Node.js, ./provider.js) signing with the keys of a
  `KeySet` the test holds, so a test can also forge tokens the provider's JWKS would accept;
- `drive_login`: the browser side of a login, as plain HTTP requests (authorize, the login
  and consent forms, then the loopback redirect);
- `secret_service`: a private D-Bus session bus with gnome-keyring's Secret Service, the
  real OS credential store the CLI keeps its tokens in;
- `SentraServer`: `sentra serve` as a subprocess, with its output kept for canary checks.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
import yaml
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

OIDC_DIR = Path(__file__).resolve().parent
CLIENT_ID = "sentra-cli"
AUDIENCE = "authenticated"
ROLE = "authenticated"
START_TIMEOUT_S = 20.0


# --- keys and tokens ---------------------------------------------------------------


@dataclass
class KeySet:
    """An ES256 and an RS256 signing key (private, held by the test and the provider)."""

    es: ec.EllipticCurvePrivateKey = field(default_factory=lambda: ec.generate_private_key(ec.SECP256R1()))
    rs: rsa.RSAPrivateKey = field(default_factory=lambda: rsa.generate_private_key(65537, 2048))
    es_kid: str = field(default_factory=lambda: "es-" + uuid.uuid4().hex[:8])
    rs_kid: str = field(default_factory=lambda: "rs-" + uuid.uuid4().hex[:8])

    def private_jwks(self) -> dict[str, Any]:
        es = json.loads(ECAlgorithm.to_jwk(self.es))
        es.update(kid=self.es_kid, alg="ES256", use="sig")
        rs = json.loads(RSAAlgorithm.to_jwk(self.rs))
        rs.update(kid=self.rs_kid, alg="RS256", use="sig")
        return {"keys": [es, rs]}

    def sign(self, claims: dict[str, Any], *, alg: str = "ES256", kid: str | None = None, **headers: Any) -> str:
        key = self.es if alg == "ES256" else self.rs
        default_kid = self.es_kid if alg == "ES256" else self.rs_kid
        return jwt.encode(claims, key, algorithm=alg, headers={"kid": kid or default_kid, **headers})


def claims_for(issuer: str, sub: str, *, ttl: int = 600, **extra: Any) -> dict[str, Any]:
    """Supabase-shaped access-token claims."""
    now = int(time.time())
    return {"iss": issuer, "aud": AUDIENCE, "sub": sub, "role": ROLE, "iat": now, "exp": now + ttl, **extra}


# --- processes -----------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def stop(proc: subprocess.Popen[Any], timeout_s: float = 5.0) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout_s)


def node_modules() -> Path:
    """tests/oidc/node_modules (git-ignored): installed by scripts/bootstrap --system, or
    here on first use (npm ci from the lock file, under a file lock)."""
    if not shutil.which("node") or not shutil.which("npm"):
        pytest.skip("node and npm are needed for the OpenID provider (scripts/bootstrap --system installs them)")
    version = subprocess.run(["node", "--version"], capture_output=True, text=True, timeout=10, check=False).stdout
    major, minor = (int(x) for x in version.strip().lstrip("v").split(".")[:2])
    if (major, minor) < (20, 12):
        pytest.skip(f"oidc-provider needs Node.js >= 20.12 (found {version.strip()})")
    target = OIDC_DIR / "node_modules"
    if (target / "oidc-provider" / "package.json").exists():
        return target
    with open(OIDC_DIR / ".install.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (target / "oidc-provider" / "package.json").exists():
            proc = subprocess.run(
                ["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"],
                cwd=OIDC_DIR,
                capture_output=True,
                text=True,
                timeout=180,
                check=False,
            )
            if proc.returncode != 0:
                raise AssertionError(f"npm ci failed in {OIDC_DIR}:\n{proc.stderr[-2000:]}")
    return target


class OidcProvider:
    """`node provider.js` on 127.0.0.1:<ephemeral>."""

    def __init__(self, workdir: Path, keys: KeySet, accounts: dict[str, dict[str, str]], access_ttl: int = 600):
        self.keys = keys
        self.accounts = accounts
        self.workdir = workdir
        self.access_ttl = access_ttl
        self.issuer = ""
        self.proc: subprocess.Popen[str] | None = None
        self.log_path = workdir / "oidc-provider.log"

    def start(self) -> OidcProvider:
        node_modules()
        jwks_file = self.workdir / "provider-jwks.json"
        fd = os.open(jwks_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(self.keys.private_jwks(), fh)
        env = {
            "PATH": os.environ.get("PATH", ""),
            "OIDC_JWKS_FILE": str(jwks_file),
            "OIDC_ACCOUNTS": json.dumps(self.accounts),
            "OIDC_CLIENT_ID": CLIENT_ID,
            "OIDC_AUDIENCE": AUDIENCE,
            "OIDC_ACCESS_TTL": str(self.access_ttl),
            "NODE_ENV": "test",
        }
        log = open(self.log_path, "w")  # noqa: SIM115 (the child keeps writing to it)
        try:
            self.proc = subprocess.Popen(
                ["node", str(OIDC_DIR / "provider.js")],
                cwd=OIDC_DIR,
                env=env,
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
            )
        finally:
            log.close()
        assert self.proc.stdout is not None
        line = _readline(self.proc.stdout, START_TIMEOUT_S)
        if not line.startswith("READY "):
            self.stop()
            raise AssertionError(f"the OpenID provider did not start: {line!r}\n{self.log_path.read_text()}")
        self.issuer = line.split()[1]
        return self

    def stop(self) -> None:
        if self.proc is not None:
            stop(self.proc)
            if self.proc.stdout is not None:
                self.proc.stdout.close()

    def output(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    @property
    def jwks_uri(self) -> str:
        return self.issuer + "/jwks"

    @property
    def token_url(self) -> str:
        return self.issuer + "/token"

    def refresh(self, refresh_token: str) -> httpx.Response:
        """The token endpoint's answer to a refresh-token grant (the test's own request)."""
        form = {"grant_type": "refresh_token", "refresh_token": refresh_token, "client_id": CLIENT_ID}
        return httpx.post(self.token_url, data=form, timeout=10)

    def sign(self, sub: str, **kw: Any) -> str:
        """A token this provider's JWKS accepts, with Supabase-shaped claims."""
        alg = kw.pop("alg", "ES256")
        return self.keys.sign(claims_for(self.issuer, sub, **kw), alg=alg)


def _readline(stream: Any, timeout_s: float) -> str:
    """One line from a child's pipe within the time-out (select, not a blocking read)."""
    import select

    deadline = time.monotonic() + timeout_s
    buf = ""
    fd = stream.fileno()
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            break
        chunk = os.read(fd, 4096).decode("utf-8", "replace")
        if not chunk:
            break
        buf += chunk
        if "\n" in buf:
            return buf.split("\n", 1)[0]
    return buf


@contextlib.contextmanager
def oidc_provider(
    workdir: Path, keys: KeySet, accounts: dict[str, dict[str, str]], access_ttl: int = 600
) -> Iterator[OidcProvider]:
    provider = OidcProvider(workdir, keys, accounts, access_ttl).start()
    try:
        yield provider
    finally:
        provider.stop()


# --- the browser ---------------------------------------------------------------------

_FORM = re.compile(r'<form method=post action="([^"]+)"')


@dataclass
class BrowserResult:
    callback_url: str  # where the provider sent the browser back (the loopback listener)
    response: httpx.Response | None  # the listener's answer, when delivered


def drive_login(url: str, login: str, password: str, *, deliver: bool = True, timeout_s: float = 10.0) -> BrowserResult:
    """Do what the user does in the browser: open the authorize URL, sign in, allow, and
    follow the redirect back to the CLI's loopback listener (unless `deliver` is False)."""
    start = httpx.URL(url)
    deadline = time.monotonic() + timeout_s
    with httpx.Client(timeout=5.0, follow_redirects=False) as client:
        resp = client.get(start)
        for _ in range(12):
            if time.monotonic() > deadline:
                break
            if resp.status_code in (302, 303):
                target = resp.url.join(resp.headers["location"])
                if target.host == start.host and target.port == start.port:
                    resp = client.get(target)
                    continue
                if not deliver:
                    return BrowserResult(str(target), None)
                return BrowserResult(str(target), client.get(target))
            match = _FORM.search(resp.text) if resp.status_code == 200 else None
            if match is None:
                raise AssertionError(f"unexpected page from the provider: HTTP {resp.status_code} {resp.text[:300]}")
            action = match.group(1)
            form = {"login": login, "password": password} if action.endswith("/login") else {}
            if "wrong user name or password" in resp.text:
                raise AssertionError("the provider refused the test account's password")
            resp = client.post(resp.url.join(action), data=form)
    raise AssertionError("the login flow did not reach the loopback redirect")


def wait_for_url(stream_path: Path, proc: subprocess.Popen[Any], timeout_s: float = 15.0) -> str:
    """The authorize URL `sentra login --no-browser` prints on stderr."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        text = stream_path.read_text(encoding="utf-8", errors="replace") if stream_path.exists() else ""
        for line in text.splitlines():
            if line.startswith("http://127.0.0.1:") and "/auth?" in line:
                return line.strip()
        if proc.poll() is not None:
            raise AssertionError(f"sentra login exited early ({proc.returncode}):\n{text}")
        time.sleep(0.05)
    raise AssertionError("sentra login printed no URL in time")


# --- the OS credential store -----------------------------------------------------------

SECRET_SERVICE_BACKEND = "keyring.backends.SecretService.Keyring"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[-1][:1] != "Z"
    except ProcessLookupError:
        return False
    except OSError:
        return True


@contextlib.contextmanager
def secret_service(base: Path) -> Iterator[dict[str, str]]:
    """A private session bus and an unlocked gnome-keyring (the real Secret Service), in
    throwaway XDG dirs. Yields the environment variables that point a process at it."""
    missing = [tool for tool in ("gnome-keyring-daemon", "dbus-daemon") if not shutil.which(tool)]
    if missing:
        pytest.skip(f"{', '.join(missing)} not installed (scripts/bootstrap --system installs gnome-keyring and dbus)")
    run_dir = Path(tempfile.mkdtemp(prefix="sentra-bus-"))  # short: unix socket paths are limited
    run_dir.chmod(0o700)
    home = base / "keyring-home"
    home.mkdir(parents=True, exist_ok=True)
    env = {
        "HOME": str(home),
        "XDG_RUNTIME_DIR": str(run_dir),
        "XDG_DATA_HOME": str(home / ".local" / "share"),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "XDG_CACHE_HOME": str(home / ".cache"),
        "PATH": os.environ.get("PATH", ""),
    }
    bus_path = run_dir / "bus"
    bus = subprocess.run(
        ["dbus-daemon", "--session", "--fork", "--print-address=1", "--print-pid=1", f"--address=unix:path={bus_path}"],
        capture_output=True,
        text=True,
        check=False,
        timeout=10,
        env=env,
    )
    if bus.returncode != 0:
        shutil.rmtree(run_dir, ignore_errors=True)
        pytest.skip(f"cannot start a D-Bus session bus: {bus.stderr.strip()}")
    address, bus_pid = bus.stdout.split()
    env["DBUS_SESSION_BUS_ADDRESS"] = address
    daemon = subprocess.Popen(
        ["gnome-keyring-daemon", "--foreground", "--unlock", "--components=secrets"],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    try:
        assert daemon.stdin is not None
        daemon.stdin.write(b"throwaway-login-keyring")
        daemon.stdin.close()
        probe = [
            sys.executable,
            "-c",
            "from keyring.backends import SecretService as S; k = S.Keyring(); "
            "k.set_password('sentra-probe', 'ready', '1'); k.delete_password('sentra-probe', 'ready')",
        ]
        deadline = time.monotonic() + 15
        while True:
            ok = subprocess.run(probe, env=env, capture_output=True, timeout=10, check=False)
            if ok.returncode == 0:
                break
            if time.monotonic() > deadline:
                pytest.skip(f"gnome-keyring did not come up: {ok.stderr.decode()[-300:]}")
            time.sleep(0.1)
        yield {**env, "PYTHON_KEYRING_BACKEND": SECRET_SERVICE_BACKEND}
    finally:
        stop(daemon)
        with contextlib.suppress(ProcessLookupError):
            os.kill(int(bus_pid), signal.SIGTERM)
        for _ in range(100):
            if not _alive(int(bus_pid)):
                break
            time.sleep(0.01)
        shutil.rmtree(run_dir, ignore_errors=True)


@contextlib.contextmanager
def _collection(env: dict[str, str]) -> Iterator[Any]:
    import secretstorage

    old = os.environ.get("DBUS_SESSION_BUS_ADDRESS")
    os.environ["DBUS_SESSION_BUS_ADDRESS"] = env["DBUS_SESSION_BUS_ADDRESS"]
    try:
        with contextlib.closing(secretstorage.dbus_init()) as conn:
            yield secretstorage.get_default_collection(conn)
    finally:
        if old is None:
            os.environ.pop("DBUS_SESSION_BUS_ADDRESS", None)
        else:
            os.environ["DBUS_SESSION_BUS_ADDRESS"] = old


def keyring_items(env: dict[str, str], service: str) -> dict[str, str]:
    """Every item of `service` in that Secret Service (the test looks; the CLI never prints)."""
    with _collection(env) as col:
        return {i.get_attributes()["username"]: i.get_secret().decode() for i in col.search_items({"service": service})}


def keyring_set(env: dict[str, str], service: str, username: str, value: str) -> None:
    with _collection(env) as col:
        for item in col.search_items({"service": service, "username": username}):
            item.set_secret(value.encode())
            return
        raise AssertionError(f"no credential-store item {service}/{username}")


def keyring_clear(env: dict[str, str], service: str) -> None:
    with _collection(env) as col:
        for item in col.search_items({"service": service}):
            item.delete()


# --- sentra serve ----------------------------------------------------------------------


def sentra_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "sentra_scan", *args]


@dataclass
class SentraServer:
    proc: subprocess.Popen[bytes]
    url: str
    data_dir: Path
    out_path: Path
    err_path: Path

    def output(self) -> str:
        return "".join(p.read_text(encoding="utf-8", errors="replace") for p in (self.out_path, self.err_path))

    def audit(self) -> list[dict[str, Any]]:
        path = self.data_dir / "audit.jsonl"
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def write_server_config(path: Path, issuer: str, data_dir: Path, **extra: Any) -> Path:
    config: dict[str, Any] = {
        "provider": {"issuer": issuer, "jwks_uri": issuer + "/jwks", "audience": AUDIENCE, "role": ROLE},
        "data_dir": str(data_dir),
        "allow_http_loopback": True,
        "contexts": {"dev": ["dev/"], "staging": ["staging/"], "prod": ["prod/"]},
        "limits": {"window_s": 60, "slow_after": 1000, "block_after": 100000, "delay_s": 0.0},
        **extra,
    }
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


@contextlib.contextmanager
def sentra_server(
    workdir: Path, config: Path, *args: str, env: dict[str, str] | None = None, timeout_s: float = START_TIMEOUT_S
) -> Iterator[SentraServer]:
    port = free_port()
    data_dir = Path(yaml.safe_load(config.read_text())["data_dir"])
    out_path, err_path = workdir / f"serve-{port}.out", workdir / f"serve-{port}.err"
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        proc = subprocess.Popen(
            sentra_cmd("serve", "--config", str(config), "--port", str(port), *args),
            stdout=out,
            stderr=err,
            env={**os.environ, **(env or {})},
            cwd=workdir,
        )
    server = SentraServer(proc, f"http://127.0.0.1:{port}", data_dir, out_path, err_path)
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            if proc.poll() is not None:
                raise AssertionError(f"sentra serve exited ({proc.returncode}):\n{server.output()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(server.url + "/api/v1/health", timeout=1).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise AssertionError(f"sentra serve did not answer in {timeout_s}s:\n{server.output()}")
            time.sleep(0.05)
        yield server
    finally:
        stop(proc)


def files_containing(root: Path, needle: bytes) -> list[str]:
    hits = []
    for dirpath, _, names in os.walk(root):
        for name in names:
            path = Path(dirpath) / name
            with contextlib.suppress(OSError):
                if path.is_file() and needle in path.read_bytes():
                    hits.append(str(path))
    return hits


def cli_login(
    env: dict[str, str], issuer: str, login: str, password: str, workdir: Path, timeout_s: float = 30.0
) -> subprocess.CompletedProcess[str]:
    """`sentra login --oidc ... --no-browser` as a process, with the browser side driven."""
    out, err = workdir / "login.out", workdir / "login.err"
    args = ["login", "--oidc", "--provider", issuer, "--client-id", CLIENT_ID, "--audience", AUDIENCE]
    args += ["--role", ROLE, "--no-browser", "--timeout", str(timeout_s)]
    with open(out, "wb") as o, open(err, "wb") as e:
        proc = subprocess.Popen(sentra_cmd(*args), cwd=workdir, env=env, stdout=o, stderr=e)
    try:
        drive_login(wait_for_url(err, proc), login, password)
        proc.wait(timeout_s)
    finally:
        stop(proc)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out.read_text(), err.read_text())
