"""`sentra serve` binds to loopback unless told otherwise: a non-loopback address needs TLS
(--tls-cert/--tls-key) or a TLS-terminating proxy in front (--behind-proxy). Real
processes; each server is stopped at teardown."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import ssl
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.helpers import (
    free_port,
    issue_cert,
    make_ca,
    start_serve,
    stop_process,
    wait_for_http,
    write_serve_config,
)

ISSUER = "https://idp.example.org"  # never contacted: these requests carry no token


@pytest.fixture
def config(tmp_path: Path) -> Path:
    return write_serve_config(tmp_path / "server.yaml", ISSUER, tmp_path / "data")


def serve_once(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`sentra serve` expected to exit at once (a refusal), with a bound on the wait."""
    return subprocess.run(
        [sys.executable, "-m", "sentra_scan", "serve", "--config", str(config), *args],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        env=dict(os.environ),
    )


def port_is_free(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.0.2.10", "sentra.example.org"])  # noqa: S104
def test_a_non_loopback_bind_without_tls_or_proxy_is_refused(config: Path, host: str) -> None:
    port = free_port()
    proc = serve_once(config, "--host", host, "--port", str(port))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert f"refusing to serve plain HTTP on {host}" in proc.stderr
    assert "--behind-proxy" in proc.stderr
    assert "--tls-cert" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert port_is_free(port)


def test_behind_proxy_binds_all_addresses_and_trusts_the_local_proxy(config: Path, tmp_path: Path) -> None:
    log = tmp_path / "serve.log"
    proc, port = start_serve(config, log, "--host", "0.0.0.0", "--behind-proxy")  # noqa: S104
    try:
        wait_for_http(f"http://127.0.0.1:{port}/api/v1/health", proc, log=log)
        resp = httpx.get(f"http://127.0.0.1:{port}/api/v1/health", timeout=5)
        assert resp.json() == {"status": "ok"}
        # The proxy (on loopback) names the client: a refused request is recorded against it,
        # so the failure limiter counts each client, not the proxy.
        refused = httpx.get(
            f"http://127.0.0.1:{port}/api/v1/projects/acme/secrets",
            headers={"X-Forwarded-For": "203.0.113.9", "Authorization": "ApiKey sk_wrong"},
            timeout=5,
        )
        assert refused.status_code == 401
    finally:
        stop_process(proc)
    records = [json.loads(line) for line in (tmp_path / "data" / "audit.jsonl").read_text().splitlines()]
    assert [r["client"] for r in records if r["action"] == "auth-failed"] == ["203.0.113.9"]
    assert "sk_wrong" not in log.read_text() + (tmp_path / "data" / "audit.jsonl").read_text()


def test_direct_tls_on_all_addresses(config: Path, tmp_path: Path) -> None:
    ca = make_ca(tmp_path / "pki", "ca")
    cert, key = issue_cert(ca, tmp_path / "pki", "server")
    log = tmp_path / "serve.log"
    proc, port = start_serve(config, log, "--host", "0.0.0.0", "--tls-cert", str(cert), "--tls-key", str(key))  # noqa: S104
    try:
        ctx = ssl.create_default_context(cafile=str(ca[0]))
        wait_for_http(f"https://127.0.0.1:{port}/api/v1/health", proc, verify=ctx, log=log)
        with pytest.raises(httpx.HTTPError):  # no plain HTTP on that port
            httpx.get(f"http://127.0.0.1:{port}/api/v1/health", timeout=5)
    finally:
        stop_process(proc)


def test_tls_options_are_checked_before_start(config: Path, tmp_path: Path) -> None:
    ca = make_ca(tmp_path / "pki", "ca")
    cert, key = issue_cert(ca, tmp_path / "pki", "server")
    other_cert, _other_key = issue_cert(ca, tmp_path / "pki", "other")
    cases = {
        "--tls-cert and --tls-key go together": ["--tls-cert", str(cert)],
        "cannot use --tls-cert": ["--tls-cert", str(other_cert), "--tls-key", str(key)],
    }
    for message, args in cases.items():
        for host in ("127.0.0.1", "0.0.0.0"):  # noqa: S104
            port = free_port()
            proc = serve_once(config, "--host", host, "--port", str(port), *args)
            assert proc.returncode == 2, proc.stdout + proc.stderr
            assert message in proc.stderr
            assert "internal error" not in proc.stderr
            assert port_is_free(port)


def test_loopback_is_the_default(config: Path, tmp_path: Path) -> None:
    log = tmp_path / "serve.log"
    proc, port = start_serve(config, log)
    try:
        wait_for_http(f"http://127.0.0.1:{port}/api/v1/health", proc, log=log)
        try:
            infos = socket.getaddrinfo(socket.gethostname(), None, proto=socket.IPPROTO_TCP)
        except socket.gaierror:
            infos = []
        addresses = {str(i[4][0]) for i in infos if not str(i[4][0]).startswith("127.") and i[4][0] != "::1"}
        for address in sorted(addresses)[:2]:  # another interface of this machine: nothing listens there
            family = socket.AF_INET6 if ":" in address else socket.AF_INET
            with socket.socket(family) as s, contextlib.suppress(OSError):
                s.settimeout(2)
                assert s.connect_ex((address, port)) != 0
    finally:
        stop_process(proc)
