"""HashiCorp Vault / OpenBao KV v2 as a home for ciphertext.

Each entry's ciphertext and metadata are one KV secret at MOUNT/data/PREFIX/PROJECT/PATH;
writes use KV v2's check-and-set (`cas`), which is exactly Sentra's version rule (0: only
if absent; N: only if the current version is N), so concurrent writers never overwrite each
other silently. Vault only ever holds ciphertext.

From the CLI (`--to vault://HOST/MOUNT/PREFIX`), the login is Vault's JWT auth method with
the token from `sentra login`; the Vault token lives in memory for the command only.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

from sentra_scan.errors import RemoteError, UsageError
from sentra_scan.server.storage import Conflict, Entry, check_name


@dataclass(frozen=True)
class VaultTarget:
    address: str  # https://host:port
    mount: str
    prefix: str


def parse_target(url: str) -> VaultTarget:
    parts = urlsplit(url)
    if parts.scheme != "vault" or not parts.netloc:
        raise UsageError(f"not a vault URL: {url!r}", hint="vault://HOST[:PORT]/MOUNT/PREFIX")
    segments = [s for s in parts.path.split("/") if s]
    if len(segments) < 1:
        raise UsageError("vault URL needs a mount: vault://HOST/MOUNT/PREFIX")
    host = parts.hostname or ""
    loopback = host in ("127.0.0.1", "localhost", "::1")
    plain = loopback and os.environ.get("SENTRA_ALLOW_HTTP_LOOPBACK") == "1"
    scheme = "http" if plain else "https"
    return VaultTarget(f"{scheme}://{parts.netloc}", segments[0], "/".join(segments[1:]) or "sentra")


class VaultClient:
    def __init__(self, address: str, *, token: str | None = None, verify: Any = True, namespace: str | None = None):
        import httpx

        headers = {"X-Vault-Request": "true"}
        if namespace:
            headers["X-Vault-Namespace"] = namespace
        from sentra_scan.upload import tls_verify

        self._http = httpx.Client(
            base_url=address.rstrip("/") + "/v1", headers=headers, timeout=15.0, verify=tls_verify(verify)
        )
        self._token = token

    def __repr__(self) -> str:
        return "VaultClient(<token hidden>)"

    def close(self) -> None:
        self._http.close()

    def _call(self, method: str, path: str, **kw: Any) -> Any:
        import httpx

        headers = {"X-Vault-Token": self._token} if self._token else {}
        try:
            return self._http.request(method, path, headers=headers, **kw)
        except httpx.HTTPError as exc:
            from sentra_scan.upload import unreachable

            error = unreachable("Vault", exc)
            raise RemoteError(
                error.message if error.hint else f"cannot reach Vault: {type(exc).__name__}", hint=error.hint
            ) from None

    def login_jwt(self, role: str, jwt: str, mount: str = "jwt") -> None:
        resp = self._call("POST", f"/auth/{quote(mount)}/login", json={"role": role, "jwt": jwt})
        if resp.status_code != 200:
            raise RemoteError(f"Vault refused the JWT login (HTTP {resp.status_code}): {_errors(resp)}")
        self._token = resp.json()["auth"]["client_token"]

    def request(self, method: str, path: str, **kw: Any) -> Any:
        return self._call(method, path, **kw)


def _errors(resp: Any) -> str:
    """Vault's error list on one line ("1 error occurred:\n\t* permission denied" -> "... * permission denied")."""
    try:
        errors = resp.json().get("errors", [])
    except (ValueError, AttributeError):
        return ""
    return " ".join("; ".join(str(e) for e in errors).split())[:300]


class VaultBackend:
    """The server's storage `Backend` on a KV v2 mount (also used directly by the CLI)."""

    def __init__(self, client: VaultClient, mount: str, prefix: str) -> None:
        self.client = client
        self.mount = mount.strip("/")
        self.prefix = prefix.strip("/")

    def _key(self, project: str, path: str) -> str:
        check_name(project, path)
        return f"{self.prefix}/{project}/{path}" if self.prefix else f"{project}/{path}"

    def _check(self, resp: Any, what: str) -> None:
        if resp.status_code == 403:
            raise RemoteError(f"Vault denied {what} (policy): {_errors(resp)}")
        if resp.status_code >= 400:
            raise RemoteError(f"Vault refused {what} (HTTP {resp.status_code}): {_errors(resp)}")

    def get(self, project: str, path: str) -> Entry | None:
        resp = self.client.request("GET", f"/{self.mount}/data/{quote(self._key(project, path))}")
        if resp.status_code == 404:
            return None
        self._check(resp, f"reading {path}")
        body = resp.json()["data"]
        data = body.get("data") or {}
        if "ciphertext" not in data:
            return None  # a deleted version
        meta = data.get("meta") or {}
        return Entry(path, int(body["metadata"]["version"]), str(data["ciphertext"]), dict(meta))

    def put(self, project: str, path: str, ciphertext: str, meta: dict[str, Any], expected: int) -> int:
        payload = {"options": {"cas": expected}, "data": {"ciphertext": ciphertext, "meta": meta}}
        resp = self.client.request("POST", f"/{self.mount}/data/{quote(self._key(project, path))}", json=payload)
        if resp.status_code == 400 and "check-and-set" in _errors(resp):
            current = self.get(project, path)
            raise Conflict(current.version if current else 0)
        self._check(resp, f"writing {path}")
        return int(resp.json()["data"]["version"])

    def delete(self, project: str, path: str, expected: int) -> None:
        current = self.get(project, path)
        if current is None or current.version != expected:
            raise Conflict(current.version if current else 0)
        resp = self.client.request("DELETE", f"/{self.mount}/metadata/{quote(self._key(project, path))}")
        self._check(resp, f"deleting {path}")

    def list(self, project: str, under: str = "") -> list[tuple[str, int]]:
        """The project's entries, or only those whose path starts with `under` (e.g. "dev/"):
        a Vault policy that confines a role to PREFIX/PROJECT/dev/ lets it list that folder,
        not the project's root."""
        check_name(project, "x/y")
        base = f"{self.prefix}/{project}" if self.prefix else project
        out: list[tuple[str, int]] = []
        pending = [under.rsplit("/", 1)[0] + "/" if "/" in under else ""]
        while pending:
            sub = pending.pop()
            resp = self.client.request("LIST", f"/{self.mount}/metadata/{quote(base + '/' + sub)}")
            if resp.status_code == 404:
                continue
            self._check(resp, "listing")
            for key in resp.json()["data"]["keys"]:
                if key.endswith("/"):
                    pending.append(sub + key)
                else:
                    entry = self.get(project, sub + key)
                    if entry is not None:
                        out.append((sub + key, entry.version))
        return sorted(e for e in out if e[0].startswith(under))


class VaultRemote:
    """The CLI's push/pull peer for `vault://` targets (same interface as upload.Remote)."""

    def __init__(self, backend: VaultBackend, project: str) -> None:
        self.backend = backend
        self.project = project

    def list(self, prefixes: tuple[str, ...] = ()) -> dict[str, int]:
        out: dict[str, int] = {}
        for prefix in prefixes or ("",):
            out.update(self.backend.list(self.project, prefix))
        return out

    def get(self, path: str) -> dict[str, Any]:
        entry = self.backend.get(self.project, path)
        if entry is None:
            raise RemoteError(f"{path}: not in Vault")
        return {"path": path, "version": entry.version, "ciphertext": entry.ciphertext, "meta": entry.meta}

    def put(self, path: str, ciphertext: str, version: int, meta: dict[str, Any]) -> int | None:
        try:
            return self.backend.put(self.project, path, ciphertext, meta, version)
        except Conflict:
            return None
