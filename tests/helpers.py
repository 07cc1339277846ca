"""Test helpers: hermetic git repositories built in temp dirs, canary secrets, running the CLI.

Every repository here is real git, with a fixed identity and no access to the user's
config (HOME and XDG dirs point into the test's temp dir; see conftest.py).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sentra_scan.ruleset.examples import expand

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED = REPO_ROOT.parent / "shared"


def canary_github_token(seed: str = "canary") -> str:
    """A GitHub-format token with a valid checksum, generated at test time (never on disk)."""
    return expand("ghp_{{github:36}}", seed)


def canary_aws_key_id(seed: str = "canary") -> str:
    return expand("AKIA{{chars:ABCDEFGHIJKLMNOPQRSTUVWXYZ234567:16}}", seed)


def run(
    cmd: list[str],
    cwd: Path | None = None,
    *,
    check: bool = True,
    env: dict[str, str] | None = None,
    input: bytes | None = None,
) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, env=env, input=input, check=False)
    result = subprocess.CompletedProcess(
        proc.args, proc.returncode, proc.stdout.decode("utf-8", "replace"), proc.stderr.decode("utf-8", "replace")
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"{cmd} failed ({proc.returncode}):\n{result.stdout}\n{result.stderr}")
    return result


def sentra(
    args: list[str], cwd: Path, *, env: dict[str, str] | None = None, input: bytes | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the real CLI as a separate process, the way a hook or a user would."""
    return run([sys.executable, "-m", "sentra_scan", *args], cwd, check=False, env=env, input=input)


@dataclass
class Repo:
    """A real git repository in a temp dir, with helpers to build history."""

    path: Path

    def git(self, *args: str, check: bool = True, env: dict[str, str] | None = None) -> str:
        full_env = None
        if env:
            full_env = {**os.environ, **env}
        return run(["git", *args], self.path, check=check, env=full_env).stdout

    def write(self, rel: str, content: str | bytes) -> Path:
        p = self.path / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            p.write_bytes(content)
        else:
            p.write_text(content, encoding="utf-8")
        return p

    def stage(self, rel: str, content: str | bytes) -> Path:
        p = self.write(rel, content)
        self.git("add", "--", rel)
        return p

    def commit(self, message: str = "commit", *, allow_empty: bool = False) -> str:
        args = ["commit", "-q", "--no-verify", "-m", message]
        if allow_empty:
            args.append("--allow-empty")
        self.git(*args)
        return self.git("rev-parse", "HEAD").strip()

    def commit_files(self, files: dict[str, str | bytes], message: str = "commit") -> str:
        for rel, content in files.items():
            self.stage(rel, content)
        return self.commit(message)

    def head(self) -> str:
        return self.git("rev-parse", "HEAD").strip()

    # --- more history shapes (added for the sources, hooks and install tests) ---

    def rename(self, old: str, new: str) -> None:
        (self.path / new).parent.mkdir(parents=True, exist_ok=True)
        self.git("mv", "--", old, new)

    def remove(self, rel: str) -> None:
        self.git("rm", "-q", "--", rel)

    def symlink(self, rel: str, target: str, *, stage: bool = True) -> Path:
        p = self.path / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.symlink_to(target)
        if stage:
            self.git("add", "--", rel)
        return p

    def branch(self, name: str, *, checkout: bool = True) -> None:
        if checkout:
            self.git("switch", "-q", "-c", name)
        else:
            self.git("branch", name)

    def switch(self, name: str) -> None:
        self.git("switch", "-q", name)

    def merge(self, branch: str, message: str = "merge") -> str:
        self.git("merge", "-q", "--no-ff", "--no-verify", "-m", message, branch)
        return self.head()

    def add_submodule(self, source: Repo, rel: str) -> None:
        """A real submodule (clone of `source`, which needs a commit), staged with .gitmodules."""
        self.git("-c", "protocol.file.allow=always", "submodule", "--quiet", "add", str(source.path), rel)

    def worktree_add(self, path: Path, branch: str) -> Repo:
        """A linked worktree on a new branch; its `.git` is a file pointing back here."""
        self.git("worktree", "add", "-q", "-b", branch, str(path))
        return Repo(path)

    def shallow_clone(self, dest: Path, depth: int = 1) -> Repo:
        run(["git", "clone", "-q", f"--depth={depth}", f"file://{self.path}", str(dest)])
        return Repo(dest)

    # --- commit ranges, pushes and audits (added for the history tests) ---

    def proc(
        self, *args: str, env: dict[str, str] | None = None, input: bytes | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run git here and return the whole result, exit code and stderr included (no check)."""
        return run(["git", *args], self.path, check=False, env={**os.environ, **(env or {})}, input=input)

    def commit_at(self, date: str, message: str = "commit") -> str:
        """Commit with this author and committer date (ISO 8601), to order history."""
        self.git(
            "commit", "-q", "--no-verify", "-m", message, env={"GIT_AUTHOR_DATE": date, "GIT_COMMITTER_DATE": date}
        )
        return self.head()

    def tag(self, name: str, rev: str = "HEAD") -> None:
        self.git("tag", name, rev)

    def add_remote(self, remote: Repo, name: str = "origin") -> None:
        self.git("remote", "add", name, str(remote.path))


def init_repo(path: Path, *, branch: str = "main") -> Repo:
    path.mkdir(parents=True, exist_ok=True)
    run(["git", "init", "-q", "-b", branch, str(path)])
    return Repo(path)


def init_bare(path: Path, *, branch: str = "main") -> Repo:
    """A bare repository, e.g. the remote that pushes go to (`Repo.git` runs in its git dir)."""
    path.mkdir(parents=True, exist_ok=True)
    run(["git", "init", "-q", "--bare", "-b", branch, str(path)])
    return Repo(path)


VENV_BIN = Path(sys.executable).parent


def assert_no_leak(proc: subprocess.CompletedProcess[str], *secrets: str) -> None:
    """The full secret must never reach a command's output (only its masked form)."""
    for secret in secrets:
        assert secret not in proc.stdout, "secret leaked to stdout"
        assert secret not in proc.stderr, "secret leaked to stderr"


def sentra_json(
    args: list[str], cwd: Path, *, env: dict[str, str] | None = None, input: bytes | None = None
) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    """Run the CLI with `--format json` appended and parse its report (stdout)."""
    proc = sentra([*args, "--format", "json"], cwd, env=env, input=input)
    try:
        doc = json.loads(proc.stdout)
    except json.JSONDecodeError as exc:
        raise AssertionError(f"no JSON report (exit {proc.returncode}):\n{proc.stdout}\n{proc.stderr}") from exc
    return proc, doc


def copy_checkout(dest: Path) -> Path:
    """Copy this checkout's files (tracked and untracked, not ignored: no .venv, .git or caches)
    into `dest`, and commit them there: a git repository tools such as pre-commit can clone."""
    listed = run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], REPO_ROOT).stdout
    dest.mkdir(parents=True, exist_ok=True)
    for name in filter(None, listed.split("\0")):
        src = REPO_ROOT / name
        if not src.is_file():  # deleted but still in the index
            continue
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, target)
    run(["git", "init", "-q", "-b", "main", str(dest)])
    # Self-contained identity and config: session fixtures run before the hermetic env is set.
    env = {
        **os.environ,
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_AUTHOR_NAME": "Test Author",
        "GIT_AUTHOR_EMAIL": "author@example.test",
        "GIT_COMMITTER_NAME": "Test Committer",
        "GIT_COMMITTER_EMAIL": "committer@example.test",
    }
    run(["git", "add", "-A"], dest, env=env)
    run(["git", "commit", "-q", "--no-verify", "-m", "snapshot of the checkout"], dest, env=env)
    return dest


# --- loopback servers, TLS material, signed tokens (added for the Vault, TLS-proxy and serve tests) ---


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def stop_process(proc: subprocess.Popen[Any], timeout_s: float = 5.0) -> None:
    """SIGTERM, then SIGKILL after `timeout_s`: this one process, never a group or a name."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout_s)


def wait_for_http(
    url: str,
    proc: subprocess.Popen[Any] | None = None,
    *,
    timeout_s: float = 20.0,
    verify: Any = True,
    log: Path | None = None,
) -> None:
    """Poll `url` until it answers 200; fail early if `proc` exits, with its log."""
    import time

    import httpx

    deadline = time.monotonic() + timeout_s
    while True:
        if proc is not None and proc.poll() is not None:
            text = log.read_text(errors="replace") if log and log.exists() else ""
            raise AssertionError(f"{proc.args} exited ({proc.returncode}) before {url} answered:\n{text[-3000:]}")
        try:
            if httpx.get(url, timeout=1.0, verify=verify).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            text = log.read_text(errors="replace") if log and log.exists() else ""
            raise AssertionError(f"{url} did not answer within {timeout_s}s:\n{text[-3000:]}")
        time.sleep(0.05)


def json_server(documents: dict[str, Any]) -> Any:
    """A context manager serving fixed JSON documents by path (e.g. {"/jwks": {...}}) on
    127.0.0.1:<ephemeral> in a thread; yields the base URL (http://127.0.0.1:PORT)."""
    import contextlib
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    bodies = {path: json.dumps(doc).encode() for path, doc in documents.items()}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = bodies.get(self.path.split("?", 1)[0])
            if body is None:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            return

    @contextlib.contextmanager
    def serve() -> Any:
        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield f"http://127.0.0.1:{server.server_address[1]}"
        finally:
            server.shutdown()
            server.server_close()
            thread.join(5)

    return serve()


def es256_key() -> Any:
    from cryptography.hazmat.primitives.asymmetric import ec

    return ec.generate_private_key(ec.SECP256R1())


def es256_jwks(key: Any, kid: str) -> dict[str, Any]:
    """The public JWKS of an ES256 key."""
    from jwt.algorithms import ECAlgorithm

    jwk = json.loads(ECAlgorithm.to_jwk(key.public_key()))
    jwk.update(kid=kid, alg="ES256", use="sig")
    return {"keys": [jwk]}


def sign_es256(key: Any, kid: str, issuer: str, sub: str, *, ttl: int = 600, **extra: Any) -> str:
    """A Supabase-shaped access token (aud and role "authenticated") signed with `key`."""
    import time

    import jwt

    now = int(time.time())
    claims = {"iss": issuer, "aud": "authenticated", "sub": sub, "role": "authenticated", "iat": now, "exp": now + ttl}
    return jwt.encode({**claims, **extra}, key, algorithm="ES256", headers={"kid": kid})


def make_ca(directory: Path, name: str) -> tuple[Path, Path]:
    """A self-signed test CA: (cert.pem, key.pem) in `directory`."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.x509.oid import NameOID

    key = es256_key()
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = directory / f"{name}.pem", directory / f"{name}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    key_path.chmod(0o600)
    return cert_path, key_path


def issue_cert(ca: tuple[Path, Path], directory: Path, name: str, *, client: bool = False) -> tuple[Path, Path]:
    """A leaf certificate signed by `ca`: a server certificate for 127.0.0.1 and localhost,
    or (client=True) a client certificate. Returns (cert.pem, key.pem)."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    ca_cert = x509.load_pem_x509_certificate(ca[0].read_bytes())
    ca_key: Any = serialization.load_pem_private_key(ca[1].read_bytes(), None)
    key = es256_key()
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH if client else ExtendedKeyUsageOID.SERVER_AUTH]),
            critical=False,
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_cert.public_key()),
            critical=False,
        )
    )
    if not client:
        sans = [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    cert = builder.sign(ca_key, hashes.SHA256())
    cert_path, key_path = directory / f"{name}.pem", directory / f"{name}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    key_path.chmod(0o600)
    return cert_path, key_path


def write_serve_config(path: Path, issuer: str, data_dir: Path, **extra: Any) -> Path:
    """A `sentra serve` config whose provider is a local JWKS (issuer + "/jwks", plain http on loopback)."""
    import yaml

    config: dict[str, Any] = {
        "provider": {
            "issuer": issuer,
            "jwks_uri": issuer + "/jwks",
            "audience": "authenticated",
            "role": "authenticated",
        },
        "data_dir": str(data_dir),
        "allow_http_loopback": True,
        "contexts": {"dev": ["dev/"], "prod": ["prod/"]},
        **extra,
    }
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def start_serve(
    config: Path, log: Path, *args: str, port: int | None = None, env: dict[str, str] | None = None
) -> tuple[subprocess.Popen[bytes], int]:
    """Start `sentra serve --config CONFIG --port PORT ARGS` (output to `log`); the caller
    waits for it (wait_for_http) and stops it (stop_process)."""
    port = port or free_port()
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "sentra_scan", "serve", "--config", str(config), "--port", str(port), *args],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
            cwd=log.parent,
        )
    return proc, port


def files_containing(root: Path, needle: bytes) -> list[str]:
    """Every file under `root` whose bytes contain `needle`."""
    hits = []
    for dirpath, _, names in os.walk(root):
        for name in names:
            path = Path(dirpath) / name
            try:
                if path.is_file() and needle in path.read_bytes():
                    hits.append(str(path))
            except OSError:
                continue
    return hits
