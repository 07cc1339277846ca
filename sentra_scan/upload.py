"""`sentra secrets push|pull`: ciphertext and non-secret metadata only, never a key or a
plaintext value, with the session's bearer token (or a machine API key). Each entry's
server version is remembered in `.sentra/sync.json`, with a digest of the ciphertext it
had then; a newer version on the server is a conflict that is reported, never
overwritten, and so is a local change not yet pushed when the server has moved on."""

from __future__ import annotations

import base64
import hashlib
import json
import os
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import quote

from sentra_scan.crypto import DecryptError
from sentra_scan.errors import RemoteError, UsageError
from sentra_scan.store import Store

SYNC_FILE = "sync.json"


@dataclass
class SyncReport:
    pushed: list[str] = field(default_factory=list)
    pulled: list[str] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)


class Peer(Protocol):
    def list(self, prefixes: tuple[str, ...] = ()) -> dict[str, int]: ...  # at least the entries under prefixes
    def get(self, path: str) -> dict[str, Any]: ...
    def put(self, path: str, ciphertext: str, version: int, meta: dict[str, Any]) -> int | None: ...


class Remote:
    def __init__(self, base_url: str, project: str, context: str, *, auth_header: str, verify: Any = True) -> None:
        import httpx

        from sentra_scan.auth.verify import TokenError, check_url

        try:
            check_url(base_url, allow_http_loopback=os.environ.get("SENTRA_ALLOW_HTTP_LOOPBACK") == "1")
        except TokenError as exc:  # a wrong URL, not a credential problem; refused before connecting
            raise UsageError(exc.message, hint="the server is reached over https:// (pin its CA with --ca)") from None
        self.project = project
        self.client = httpx.Client(
            base_url=base_url.rstrip("/") + f"/api/v1/projects/{quote(project)}",
            headers={"Authorization": auth_header, "X-Sentra-Context": context},
            timeout=20.0,
            verify=tls_verify(verify),
        )

    def _call(self, method: str, url: str, **kw: Any) -> Any:
        import httpx

        try:
            resp = self.client.request(method, url, **kw)
        except httpx.HTTPError as exc:
            raise unreachable("the server", exc) from None
        return resp

    def list(self, prefixes: tuple[str, ...] = ()) -> dict[str, int]:
        resp = self._call("GET", "/secrets")  # the server narrows the list to the request's context
        _check(resp)
        return {e["path"]: int(e["version"]) for e in resp.json()["entries"]}

    def get(self, path: str) -> dict[str, Any]:
        resp = self._call("GET", f"/secrets/{quote(path)}")
        _check(resp)
        data: dict[str, Any] = resp.json()
        return data

    def put(self, path: str, ciphertext: str, version: int, meta: dict[str, Any]) -> int | None:
        resp = self._call(
            "PUT", f"/secrets/{quote(path)}", json={"ciphertext": ciphertext, "version": version, "meta": meta}
        )
        if resp.status_code == 409:
            return None
        _check(resp)
        return int(resp.json()["version"])


def tls_verify(verify: Any) -> Any:
    """httpx's `verify`: a CA bundle's path (--ca) becomes an SSL context that trusts it."""
    if not isinstance(verify, str | os.PathLike):
        return verify
    import ssl

    try:
        return ssl.create_default_context(cafile=os.fspath(verify))
    except (OSError, ssl.SSLError) as exc:
        raise UsageError(f"--ca {os.fspath(verify)}: not a readable PEM CA bundle ({exc})") from None


def unreachable(what: str, exc: Exception) -> RemoteError:
    """A failed connection, said plainly; an untrusted certificate says how to pin the CA."""
    text = str(exc)
    if "CERTIFICATE_VERIFY_FAILED" in text:
        reason = text.split("certificate verify failed:", 1)[-1].split("(_ssl", 1)[0].strip(" :")
        return RemoteError(
            f"cannot reach {what}: its TLS certificate is not trusted ({reason or 'verification failed'})",
            hint="pin the CA that signed it with --ca CA.pem",
        )
    return RemoteError(f"cannot reach {what}: {type(exc).__name__}: {text}".rstrip(": "))


def _check(resp: Any) -> None:
    if resp.status_code >= 400:
        try:
            detail = resp.json().get("error", "")
        except ValueError:
            detail = ""
        raise RemoteError(f"server refused: HTTP {resp.status_code} {detail}".rstrip())


def auth_header() -> str:
    key = os.environ.get("SENTRA_API_KEY")
    if key:
        return f"ApiKey {key}"
    from sentra_scan.auth.session import current

    _provider, tokens = current()
    return f"Bearer {tokens.access_token}"


@dataclass
class _Sync:
    versions: dict[str, int] = field(default_factory=dict)  # path -> the server version last synced
    digests: dict[str, str] = field(default_factory=dict)  # path -> sha256 of the ciphertext then

    def record(self, path: str, version: int, blob: bytes) -> None:
        self.versions[path] = version
        self.digests[path] = _digest(blob)

    def changed_locally(self, path: str, blob: bytes) -> bool:
        """A local entry that differs from what was last synced (or was never synced)."""
        if path not in self.versions:
            return True
        known = self.digests.get(path)
        return known is not None and known != _digest(blob)  # a file without digests: assume unchanged


def _digest(blob: bytes) -> str:
    return hashlib.sha256(blob).hexdigest()


def _load_sync(store: Store) -> _Sync:
    path = store.path.with_name(SYNC_FILE)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return _Sync(
            {str(k): int(v) for k, v in data.get("versions", {}).items()},
            {str(k): str(v) for k, v in data.get("digests", {}).items()},
        )
    except (OSError, ValueError, AttributeError):
        return _Sync()


def _save_sync(store: Store, sync: _Sync) -> None:
    from sentra_scan.keys import write_private

    doc = {"format": 1, "versions": dict(sorted(sync.versions.items())), "digests": dict(sorted(sync.digests.items()))}
    write_private(store.path.with_name(SYNC_FILE), json.dumps(doc, indent=2).encode())


def push(store: Store, remote: Peer, prefixes: tuple[str, ...]) -> SyncReport:
    report = SyncReport()
    sync = _load_sync(store)
    server = remote.list(prefixes)
    meta = {"store_id": store.keys.store_id, "format": 1}
    try:  # what was pushed stays recorded even when a later entry fails
        for path in store.names():
            if not path.startswith(prefixes):
                continue
            sealed = store.sealed[path]
            blob = base64.b64encode(sealed).decode()
            known = sync.versions.get(path, 0)
            if server.get(path, 0) != known:
                report.conflicts.append(path)
                continue
            if known and remote.get(path)["ciphertext"] == blob:
                sync.record(path, known, sealed)
                report.unchanged.append(path)
                continue
            new = remote.put(path, blob, known, meta)
            if new is None:
                report.conflicts.append(path)
                continue
            sync.record(path, new, sealed)
            report.pushed.append(path)
    finally:
        _save_sync(store, sync)
    return report


def pull(store: Store, remote: Peer, prefixes: tuple[str, ...]) -> SyncReport:
    """Entries from the server into the local store: each must open with this store's
    keys (it is verified before it is accepted); a local change not yet pushed is kept
    and reported as a conflict."""
    report = SyncReport()
    sync = _load_sync(store)
    for path, version in sorted(remote.list(prefixes).items()):
        if not path.startswith(prefixes):
            continue
        if sync.versions.get(path) == version:
            report.unchanged.append(path)
            continue
        local = store.sealed.get(path)
        if local is not None and sync.changed_locally(path, local):
            report.conflicts.append(path)  # a local change the server has not seen: kept
            continue
        entry = remote.get(path)
        try:
            blob = base64.b64decode(entry["ciphertext"], validate=True)
            version = int(entry["version"])
        except (ValueError, KeyError, TypeError):
            raise RemoteError(f"{path}: the server returned a malformed entry") from None
        try:  # verify first
            store.keys.open(blob, purpose="store-entry", name=f"{store.keys.store_id}/{path}")
        except DecryptError as exc:
            raise DecryptError(
                f"{path} from the server does not open with this store's keys: {exc.message}",
                hint="it was sealed by another store (another keys.json) or is not Sentra's; nothing was pulled",
            ) from None
        store.sealed[path] = blob
        store.log_action("pull", path)
        sync.record(path, version, blob)
        report.pulled.append(path)
    if report.pulled:
        store.save()
    _save_sync(store, sync)
    return report


def require_server(url: str | None) -> str:
    url = url or os.environ.get("SENTRA_SERVER")
    if not url:
        raise UsageError("no server", hint="pass --server URL or set SENTRA_SERVER")
    return url
