"""Tokens live in the OS credential store only, split across entries where a platform
limits an entry's size (Windows: 2.5 KB). The provider's public settings (issuer, URLs,
client id) go in a small 0600 file; no token is ever written anywhere else."""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any

from sentra_scan.auth.oauth import Provider
from sentra_scan.errors import KeyStateError
from sentra_scan.keys import secure_dir, usable_keyring, write_private

SERVICE = "sentra-scan-auth"
CHUNK = 1000


def config_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / "sentra" / "auth.json"


def require_keyring(backend: Any = None) -> Any:
    if backend is None:
        import keyring

        backend = keyring.get_keyring()
    if not usable_keyring(backend):
        raise KeyStateError(
            "no OS credential store: tokens are only ever kept there",
            hint="unlock your keyring (Secret Service / Keychain / Credential Manager) and run 'sentra login' again",
        )
    return backend


class TokenStore:
    def __init__(self, backend: Any = None) -> None:
        self.backend = require_keyring(backend)

    def _put(self, name: str, value: str) -> None:
        chunks = [value[i : i + CHUNK] for i in range(0, len(value), CHUNK)] or [""]
        old = self._count(name)
        for i, chunk in enumerate(chunks):
            self.backend.set_password(SERVICE, f"{name}:{i}", chunk)
        self.backend.set_password(SERVICE, f"{name}:n", str(len(chunks)))
        for i in range(len(chunks), old):
            self._delete(f"{name}:{i}")

    def _count(self, name: str) -> int:
        n = self.backend.get_password(SERVICE, f"{name}:n")
        return int(n) if n and n.isdigit() else 0

    def _get(self, name: str) -> str | None:
        n = self._count(name)
        if not n:
            return None
        parts = [self.backend.get_password(SERVICE, f"{name}:{i}") for i in range(n)]
        if any(p is None for p in parts):
            return None
        return "".join(p for p in parts if p is not None)

    def _delete(self, key: str) -> None:
        with contextlib.suppress(Exception):  # absent already
            self.backend.delete_password(SERVICE, key)

    def save(self, provider: Provider, access: str, refresh: str | None) -> None:
        self._put(f"{provider.issuer}|access", access)
        if refresh:
            self._put(f"{provider.issuer}|refresh", refresh)
        secure_dir(config_path().parent)
        write_private(config_path(), json.dumps({"provider": provider.as_dict()}, indent=2).encode())

    def load(self, provider: Provider) -> tuple[str | None, str | None]:
        return self._get(f"{provider.issuer}|access"), self._get(f"{provider.issuer}|refresh")

    def clear(self, provider: Provider) -> None:
        for kind in ("access", "refresh"):
            name = f"{provider.issuer}|{kind}"
            for i in range(self._count(name)):
                self._delete(f"{name}:{i}")
            self._delete(f"{name}:n")
        config_path().unlink(missing_ok=True)


def saved_provider() -> Provider | None:
    try:
        data = json.loads(config_path().read_text(encoding="utf-8"))
        return Provider(**data["provider"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
