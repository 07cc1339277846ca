"""TLS at a reverse proxy, for real: Debian's nginx on 127.0.0.1 (a generated config in a
temp dir, certificates from a test CA made with `cryptography`) terminating TLS in front of
`sentra serve` on another loopback port. The CLI uploads and downloads over HTTPS with the
CA pinned (`--ca`), with an API key the server's admin endpoint issued to a bearer token
signed by the test's key. Refused: plain http to a host that is not loopback (before any
connection), a certificate from another CA (exit 7), and, with mutual TLS, a client
without a certificate from the clients' CA.

Skipped (with the reason) where nginx is not installed: scripts/bootstrap --system
installs it."""

from __future__ import annotations

import base64
import os
import secrets
import shutil
import socket
import ssl
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.helpers import (
    es256_jwks,
    es256_key,
    files_containing,
    free_port,
    init_repo,
    issue_cert,
    json_server,
    make_ca,
    sentra,
    sign_es256,
    start_serve,
    stop_process,
    wait_for_http,
    write_serve_config,
)

ADMIN = "0a2b3c4d-0000-4000-8000-0000000ad111"

NGINX_CONF = """
worker_processes 1;
{user}
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 64; }}
http {{
    access_log {dir}/access.log;
    client_body_temp_path {dir}/client_body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_certificate {cert};
    ssl_certificate_key {key};
    client_max_body_size 512k;

    server {{
        listen 127.0.0.1:{tls_port} ssl;
        server_name localhost;
        location /api/v1/ {{
            proxy_pass http://127.0.0.1:{upstream};
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto https;
        }}
    }}

    server {{
        listen 127.0.0.1:{mtls_port} ssl;
        server_name localhost;
        ssl_client_certificate {clients_ca};
        ssl_verify_client on;
        location /api/v1/ {{
            proxy_pass http://127.0.0.1:{upstream};
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-Proto https;
        }}
    }}
}}
"""


def nginx_binary() -> str:
    found = shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx",) if os.access(p, os.X_OK)), None)
    if found is None:
        pytest.skip("nginx is not installed (scripts/bootstrap --system installs it)")
    return found


@dataclass
class Stack:
    url: str  # https://127.0.0.1:PORT (nginx)
    mtls_url: str
    ca: Path
    other_ca: Path
    client_cert: tuple[Path, Path]
    stranger_cert: tuple[Path, Path]
    data_dir: Path
    workdir: Path
    issuer: str
    key: Any
    kid: str

    def token(self, sub: str = ADMIN) -> str:
        return sign_es256(self.key, self.kid, self.issuer, sub)

    def context(self, ca: Path | None = None, cert: tuple[Path, Path] | None = None) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=str(ca or self.ca))
        if cert:
            ctx.load_cert_chain(str(cert[0]), str(cert[1]))
        return ctx


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    nginx = nginx_binary()
    work = tmp_path_factory.mktemp("tls")
    pki = work / "pki"
    ca = make_ca(pki, "test-ca")
    other_ca = make_ca(pki, "other-ca")
    clients_ca = make_ca(pki, "clients-ca")
    server_cert = issue_cert(ca, pki, "server")
    client_cert = issue_cert(clients_ca, pki, "client", client=True)
    stranger_cert = issue_cert(other_ca, pki, "stranger", client=True)

    key, kid = es256_key(), "tls-test-" + secrets.token_hex(4)
    with json_server({"/jwks": es256_jwks(key, kid)}) as issuer:
        data_dir = work / "server-data"
        config = write_serve_config(work / "server.yaml", issuer, data_dir, members={ADMIN: {"acme": "admin"}})
        serve_log = work / "serve.log"
        serve, upstream = start_serve(config, serve_log)  # loopback: no --behind-proxy needed
        nginx_proc = None
        try:
            wait_for_http(f"http://127.0.0.1:{upstream}/api/v1/health", serve, log=serve_log)
            proxy = work / "nginx"
            proxy.mkdir()
            tls_port, mtls_port = free_port(), free_port()
            conf = proxy / "nginx.conf"
            conf.write_text(
                NGINX_CONF.format(
                    user="user root;" if os.geteuid() == 0 else "",  # workers need the 0700 temp dirs
                    dir=proxy,
                    cert=server_cert[0],
                    key=server_cert[1],
                    clients_ca=clients_ca[0],
                    tls_port=tls_port,
                    mtls_port=mtls_port,
                    upstream=upstream,
                )
            )
            log = proxy / "error.log"
            nginx_proc = subprocess.Popen(
                [nginx, "-p", str(proxy), "-c", str(conf), "-e", str(log), "-g", "daemon off;"],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            ctx = ssl.create_default_context(cafile=str(ca[0]))
            wait_for_http(f"https://127.0.0.1:{tls_port}/api/v1/health", nginx_proc, verify=ctx, log=log)
            yield Stack(
                url=f"https://127.0.0.1:{tls_port}",
                mtls_url=f"https://127.0.0.1:{mtls_port}",
                ca=ca[0],
                other_ca=other_ca[0],
                client_cert=client_cert,
                stranger_cert=stranger_cert,
                data_dir=data_dir,
                workdir=work,
                issuer=issuer,
                key=key,
                kid=kid,
            )
        finally:
            if nginx_proc is not None:
                stop_process(nginx_proc)
            stop_process(serve)


def create_api_key(stack: Stack) -> str:
    """The admin endpoint, through the proxy, with a bearer token: a developer key for dev/."""
    with httpx.Client(verify=stack.context(), timeout=10.0) as client:
        resp = client.post(
            stack.url + "/api/v1/projects/acme/api-keys",
            headers={"Authorization": f"Bearer {stack.token()}"},
            json={"name": "ci", "role": "developer", "prefixes": ["dev/"]},
        )
    assert resp.status_code == 201, resp.text
    return str(resp.json()["key"])


def test_cli_push_and_pull_over_https_with_the_ca_pinned(stack: Stack, tmp_path: Path, hermetic_env: Path) -> None:
    api_key = create_api_key(stack)
    env = {**os.environ, "SENTRA_KEY": base64.b64encode(secrets.token_bytes(32)).decode(), "SENTRA_API_KEY": api_key}
    env.pop("SENTRA_ALLOW_HTTP_LOOPBACK", None)
    outputs: list[str] = []

    def cli(*args: str, cwd: Path, stdin: str | None = None, **extra: str) -> subprocess.CompletedProcess[str]:
        proc = sentra(list(args), cwd, env={**env, **extra}, input=stdin.encode() if stdin else None)
        outputs.extend([proc.stdout, proc.stderr])
        return proc

    value = "tls-canary-" + secrets.token_hex(16)
    repo = init_repo(tmp_path / "repo")
    repo.commit_files({"README.md": "hello\n"})
    assert cli("secrets", "set", "dev/API_KEY", "--value-stdin", cwd=repo.path, stdin=value).returncode == 0

    sync = ["--to", stack.url, "--project", "acme"]
    push = cli("secrets", "push", *sync, "--ca", str(stack.ca), cwd=repo.path)
    assert push.returncode == 0, push.stderr
    assert "push: 1 entries, 0 unchanged" in push.stdout
    stored = stack.data_dir / "projects" / "acme" / "dev" / "API_KEY.json"
    assert stored.exists()
    assert files_containing(stack.data_dir, value.encode()) == []  # ciphertext only
    assert files_containing(stack.data_dir, api_key.encode()) == []  # the key is kept hashed

    # A certificate from a CA that is not the pinned one: no connection, exit 7, a clear message.
    for ca_args in (["--ca", str(stack.other_ca)], []):
        wrong = cli("secrets", "push", *sync, *ca_args, cwd=repo.path)
        assert wrong.returncode == 7, wrong.stdout + wrong.stderr
        assert "certificate" in wrong.stderr
        assert "--ca" in wrong.stderr
        assert "Traceback" not in wrong.stderr

    clone = init_repo(tmp_path / "clone")
    (clone.path / ".git" / "sentra").mkdir(mode=0o700)
    shutil.copy2(repo.path / ".git" / "sentra" / "keys.json", clone.path / ".git" / "sentra" / "keys.json")
    pull = cli("secrets", "pull", *sync, "--ca", str(stack.ca), cwd=clone.path)
    assert pull.returncode == 0, pull.stderr
    assert "pull: 1 entries, 0 unchanged" in pull.stdout
    check = cli(
        "run",
        "--",
        "python3",
        "-c",
        "import hashlib, os, sys; sys.stdout.write(hashlib.sha256(os.environ['API_KEY'].encode()).hexdigest())",
        cwd=clone.path,
    )
    import hashlib

    assert check.stdout == hashlib.sha256(value.encode()).hexdigest(), check.stderr

    # The key's prefixes hold: prod/ is not reachable with it.
    assert cli("secrets", "set", "prod/DB", "--value-stdin", cwd=repo.path, stdin="prod-value").returncode == 0
    prod = cli("secrets", "push", *sync, "--env", "prod", "--ca", str(stack.ca), cwd=repo.path)
    assert prod.returncode == 7, prod.stdout + prod.stderr
    assert "HTTP 403" in prod.stderr
    printed = "\n".join(outputs)
    assert api_key not in printed
    assert value not in printed
    for root in (tmp_path, hermetic_env):
        assert files_containing(root, api_key.encode()) == []


def test_plain_http_to_a_remote_host_is_refused_before_connecting(stack: Stack, tmp_path: Path) -> None:
    """A trap stands in as the HTTP proxy: had the CLI tried to connect, it would have come here."""
    hits: list[bytes] = []
    trap = socket.socket()
    trap.bind(("127.0.0.1", 0))
    trap.listen(4)
    trap.settimeout(0.2)
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = trap.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(1)
                try:
                    hits.append(conn.recv(1024) or b"(connected)")
                except OSError:
                    hits.append(b"(connected)")

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    proxy = f"http://127.0.0.1:{trap.getsockname()[1]}"
    repo = init_repo(tmp_path / "repo")
    env = {
        **os.environ,
        "SENTRA_KEY": base64.b64encode(secrets.token_bytes(32)).decode(),
        "SENTRA_API_KEY": "sk_not_a_real_key",
        "HTTP_PROXY": proxy,
        "HTTPS_PROXY": proxy,
        "ALL_PROXY": proxy,
        "http_proxy": proxy,
        "https_proxy": proxy,
        "all_proxy": proxy,
        "NO_PROXY": "",
        "no_proxy": "",
        "SENTRA_ALLOW_HTTP_LOOPBACK": "1",  # allows loopback only, never another host
    }
    try:
        assert sentra(["secrets", "set", "dev/X", "--value-stdin"], repo.path, env=env, input=b"v").returncode == 0
        for url in ("http://sentra.example.org:8600", "http://10.1.2.3:8600"):
            proc = sentra(["secrets", "push", "--to", url, "--project", "acme"], repo.path, env=env)
            assert proc.returncode == 2, proc.stdout + proc.stderr
            assert "HTTPS is required" in proc.stderr
            assert "Traceback" not in proc.stderr
        # the trap works: an https URL through it is attempted (and fails there)
        proc = sentra(
            ["secrets", "push", "--to", "https://sentra.example.org", "--project", "acme"], repo.path, env=env
        )
        assert proc.returncode == 7, proc.stdout + proc.stderr
    finally:
        stop.set()
        thread.join(5)
        trap.close()
    assert len(hits) == 1, hits
    assert hits[0].startswith(b"CONNECT sentra.example.org:443")
    assert b"sk_not_a_real_key" not in hits[0]


def test_mutual_tls_refuses_a_client_without_a_certificate(stack: Stack) -> None:
    health = stack.mtls_url + "/api/v1/health"
    with httpx.Client(verify=stack.context(), timeout=10.0) as anonymous:
        resp = anonymous.get(health)
    assert resp.status_code == 400
    assert "No required SSL certificate" in resp.text
    with httpx.Client(verify=stack.context(cert=stack.stranger_cert), timeout=10.0) as stranger:
        try:
            refused = stranger.get(health).status_code
        except httpx.HTTPError:  # some TLS stacks abort the handshake instead
            refused = 0
    assert refused in (0, 400)
    with httpx.Client(verify=stack.context(cert=stack.client_cert), timeout=10.0) as member:
        resp = member.get(health)
    assert resp.status_code == 200
    assert resp.json() == {"status": "ok"}
