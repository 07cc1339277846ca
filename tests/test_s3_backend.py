"""The S3 storage backend against moto in server mode (a real HTTP S3 endpoint on
127.0.0.1, dummy credentials): directly, and behind `sentra serve` configured with
`storage: {kind: s3}`."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from sentra_scan.server.storage import Conflict, S3Backend
from tests.oidc.harness import KeySet, OidcProvider, oidc_provider, sentra_server, write_server_config

AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_CONFIG_FILE": "/nonexistent/aws-config",
    "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/aws-credentials",
    "AWS_EC2_METADATA_DISABLED": "true",
}
ADMIN = "sub-s3-admin"


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per S3 request otherwise

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture
def s3(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    import boto3

    for key, value in AWS_ENV.items():
        monkeypatch.setenv(key, value)
    return boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1")


def _bucket(s3: Any, name: str) -> str:
    s3.create_bucket(Bucket=name)
    return name


def test_put_get_list_delete_and_conflicts(s3: Any) -> None:
    bucket = _bucket(s3, "sentra-direct")
    backend = S3Backend(bucket, prefix="/teams/", client=s3)
    assert backend.get("acme", "dev/A") is None
    assert backend.list("acme") == []

    assert backend.put("acme", "dev/A", "Y3Qx", {"store_id": "s1"}, 0) == 1
    with pytest.raises(Conflict) as stale:
        backend.put("acme", "dev/A", "Y3Qy", {}, 0)
    assert stale.value.current == 1
    assert backend.put("acme", "dev/A", "Y3Qy", {}, 1) == 2
    assert backend.put("acme", "prod/B", "Y3Qz", {}, 0) == 1
    assert backend.put("other", "dev/A", "b3RoZXI=", {}, 0) == 1

    entry = backend.get("acme", "dev/A")
    assert entry is not None
    assert (entry.version, entry.ciphertext, entry.meta) == (2, "Y3Qy", {})
    assert backend.list("acme") == [("dev/A", 2), ("prod/B", 1)]
    assert backend.list("other") == [("dev/A", 1)]

    # The objects, as S3 holds them: versioned JSON under PREFIX/PROJECT/PATH.json.
    keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"])
    assert keys == ["teams/acme/dev/A.json", "teams/acme/prod/B.json", "teams/other/dev/A.json"]
    doc = json.loads(s3.get_object(Bucket=bucket, Key="teams/acme/dev/A.json")["Body"].read())
    assert doc == {"format": 1, "version": 2, "ciphertext": "Y3Qy", "meta": {}}

    with pytest.raises(Conflict):
        backend.delete("acme", "dev/A", 1)
    with pytest.raises(Conflict):
        backend.delete("acme", "dev/NOPE", 1)
    backend.delete("acme", "dev/A", 2)
    assert backend.get("acme", "dev/A") is None
    assert backend.list("acme") == [("prod/B", 1)]

    for bad in ("A", "dev/../x", "dev//x", "dev/a b"):
        with pytest.raises(ValueError, match="invalid"):
            backend.put("acme", bad, "eA==", {}, 0)
    with pytest.raises(ValueError, match="invalid project"):
        backend.list("../acme")


def test_list_skips_foreign_objects(s3: Any) -> None:
    bucket = _bucket(s3, "sentra-pages")
    backend = S3Backend(bucket, client=s3)
    for i in range(12):
        backend.put("acme", f"dev/K{i:02d}", "eA==", {}, 0)
    s3.put_object(Bucket=bucket, Key="sentra/acme/README", Body=b"not an entry")
    s3.put_object(Bucket=bucket, Key="sentra/acmeX/dev/A.json", Body=b"{}")  # another project's prefix
    listed = backend.list("acme")
    assert [p for p, _ in listed] == [f"dev/K{i:02d}" for i in range(12)]


def test_concurrent_writers_in_one_process(s3: Any) -> None:
    backend = S3Backend(_bucket(s3, "sentra-race"), client=s3)
    wins: list[int] = []
    lock = threading.Lock()

    def writer() -> None:
        for _ in range(5):
            for _attempt in range(100):
                current = backend.get("acme", "dev/RACE")
                try:
                    version = backend.put("acme", "dev/RACE", "eA==", {}, current.version if current else 0)
                except Conflict:
                    continue
                with lock:
                    wins.append(version)
                break

    threads = [threading.Thread(target=writer) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not any(t.is_alive() for t in threads)
    entry = backend.get("acme", "dev/RACE")
    assert entry is not None
    assert sorted(wins) == list(range(1, 16))  # every version once: no lost update
    assert entry.version == 15


@pytest.fixture(scope="module")
def provider(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OidcProvider]:
    with oidc_provider(tmp_path_factory.mktemp("oidc"), KeySet(), {}) as p:
        yield p


def test_sentra_serve_with_s3_storage(s3: Any, moto_endpoint: str, provider: OidcProvider, tmp_path: Path) -> None:
    bucket = _bucket(s3, "sentra-served")
    config = write_server_config(
        tmp_path / "server.yaml",
        provider.issuer,
        tmp_path / "data",
        members={ADMIN: {"acme": "admin"}},
        storage={"kind": "s3", "bucket": bucket, "prefix": "srv", "endpoint_url": moto_endpoint},
    )
    headers = {"Authorization": f"Bearer {provider.sign(ADMIN)}", "X-Sentra-Context": "dev"}
    sealed = base64.b64encode(b"\x01sealed-bytes").decode()
    with sentra_server(tmp_path, config, env=AWS_ENV) as server:
        base = f"{server.url}/api/v1/projects/acme/secrets"
        with httpx.Client(headers=headers, timeout=15) as client:
            assert client.get(base).json() == {"entries": []}
            put = client.put(f"{base}/dev/DB_URL", json={"ciphertext": sealed, "version": 0, "meta": {"a": 1}})
            assert put.json() == {"path": "dev/DB_URL", "version": 1}
            conflict = client.put(f"{base}/dev/DB_URL", json={"ciphertext": sealed, "version": 0})
            assert conflict.status_code == 409
            assert conflict.json()["current"] == 1
            assert client.get(f"{base}/dev/DB_URL").json()["ciphertext"] == sealed
            assert client.get(base).json() == {"entries": [{"path": "dev/DB_URL", "version": 1}]}
            assert client.delete(f"{base}/dev/DB_URL", params={"version": 0}).status_code == 409
            assert client.put(f"{base}/dev/DB_URL", json={"ciphertext": sealed, "version": 1}).status_code == 200

            obj = json.loads(s3.get_object(Bucket=bucket, Key="srv/acme/dev/DB_URL.json")["Body"].read())
            assert obj["version"] == 2
            assert obj["ciphertext"] == sealed

            assert client.delete(f"{base}/dev/DB_URL", params={"version": 2}).status_code == 204
            assert client.get(f"{base}/dev/DB_URL").status_code == 404
        assert "Contents" not in s3.list_objects_v2(Bucket=bucket, Prefix="srv/")
        # The data dir holds the audit log and API keys, never an entry.
        assert not list(server.data_dir.rglob("*.json.tmp"))
        assert not (server.data_dir / "projects").exists()
        assert [r["action"] for r in server.audit()] == ["put", "put", "delete"]
        assert "Traceback" not in server.output()


def test_sentra_serve_s3_config_errors(provider: OidcProvider, tmp_path: Path) -> None:
    import subprocess

    from tests.oidc.harness import sentra_cmd

    config = write_server_config(
        tmp_path / "server.yaml", provider.issuer, tmp_path / "data", storage={"kind": "s3", "prefix": "x"}
    )
    proc = subprocess.run(
        sentra_cmd("serve", "--config", str(config), "--port", "1"),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert proc.returncode == 3
    assert "storage.bucket: missing" in proc.stderr
