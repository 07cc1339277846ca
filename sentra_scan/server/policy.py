"""Who may do what: four roles with per-permission verbs, machine API keys (stored
hashed, scoped, revocable), path rules separate from roles, and a limiter that slows down
and then refuses clients that keep failing."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROLES: dict[str, frozenset[str]] = {
    "viewer": frozenset({"secrets:list"}),
    "developer": frozenset({"secrets:list", "secrets:get", "secrets:put"}),
    "maintainer": frozenset({"secrets:list", "secrets:get", "secrets:put", "secrets:delete", "audit:read"}),
    "admin": frozenset(
        {"secrets:list", "secrets:get", "secrets:put", "secrets:delete", "audit:read", "apikeys:manage"}
    ),
}
RANK = {"viewer": 0, "developer": 1, "maintainer": 2, "admin": 3}


@dataclass(frozen=True)
class Principal:
    subject: str  # the token's sub, or "apikey:<id>"
    project_roles: dict[str, str]
    prefixes: tuple[str, ...] | None = None  # an API key's own path scope
    kind: str = "user"

    def role(self, project: str) -> str | None:
        return self.project_roles.get(project)

    def can(self, project: str, permission: str) -> bool:
        role = self.role(project)
        return role is not None and permission in ROLES[role]


@dataclass(frozen=True)
class PathRules:
    """Contexts (the flow a request comes from: dev, prod, ...) map to entry-path
    prefixes; roles may be narrowed further. A dev-context request never reaches prod/
    entries, whatever the role."""

    contexts: dict[str, tuple[str, ...]]
    role_prefixes: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def allows(self, context: str | None, role: str, path: str, key_prefixes: tuple[str, ...] | None) -> bool:
        if context is None or context not in self.contexts:
            return False
        if not path.startswith(self.contexts[context]):
            return False
        narrowed = self.role_prefixes.get(role)
        if narrowed is not None and not path.startswith(narrowed):
            return False
        return key_prefixes is None or path.startswith(key_prefixes)


class ApiKeys:
    """Keys look like `sentra_<id>_<secret>`; only an HMAC of the secret is stored."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        pepper_file = path.with_name("apikey-pepper")
        if not pepper_file.exists():
            fd = os.open(pepper_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(os.urandom(32))
        self._pepper = pepper_file.read_bytes()

    def _load(self) -> dict[str, Any]:
        try:
            data: dict[str, Any] = json.loads(self.path.read_text(encoding="utf-8"))
            return data
        except FileNotFoundError:
            return {"format": 1, "keys": {}}

    def _save(self, data: dict[str, Any]) -> None:
        tmp = self.path.with_name(self.path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=2)
        os.replace(tmp, self.path)

    def _hash(self, secret: str) -> str:
        return hmac.new(self._pepper, secret.encode(), hashlib.sha256).hexdigest()

    def create(self, project: str, name: str, role: str, prefixes: Iterable[str], creator: str) -> tuple[str, str]:
        key_id = secrets.token_hex(6)
        secret = secrets.token_urlsafe(32)
        with self._lock:
            data = self._load()
            data["keys"][key_id] = {
                "project": project,
                "name": name,
                "role": role,
                "prefixes": list(prefixes),
                "hash": self._hash(secret),
                "created_by": creator,
                "created": int(time.time()),
                "revoked": False,
            }
            self._save(data)
        return key_id, f"sentra_{key_id}_{secret}"

    def authenticate(self, presented: str) -> Principal | None:
        parts = presented.split("_", 2)
        if len(parts) != 3 or parts[0] != "sentra":
            return None
        record = self._load()["keys"].get(parts[1])
        if record is None or record.get("revoked"):
            return None
        if not hmac.compare_digest(record["hash"], self._hash(parts[2])):
            return None
        return Principal(
            f"apikey:{parts[1]}", {record["project"]: record["role"]}, tuple(record["prefixes"]) or None, "apikey"
        )

    def list(self, project: str) -> list[dict[str, Any]]:
        keys = self._load()["keys"]
        return [
            {k: v for k, v in {"id": kid, **rec}.items() if k != "hash"}
            for kid, rec in sorted(keys.items())
            if rec["project"] == project
        ]

    def revoke(self, project: str, key_id: str) -> bool:
        with self._lock:
            data = self._load()
            record = data["keys"].get(key_id)
            if record is None or record["project"] != project:
                return False
            record["revoked"] = True
            self._save(data)
            return True


class FailureLimiter:
    """Per client: after `slow_after` failures in `window_s`, each answer is delayed; after
    `block_after`, the client is refused (429) until the window passes."""

    def __init__(self, *, window_s: float = 60, slow_after: int = 5, block_after: int = 20, delay_s: float = 0.2):
        self.window_s = window_s
        self.slow_after = slow_after
        self.block_after = block_after
        self.delay_s = delay_s
        self._failures: dict[str, list[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, client: str, now: float) -> list[float]:
        times = [t for t in self._failures.get(client, []) if now - t < self.window_s]
        self._failures[client] = times
        return times

    def blocked(self, client: str) -> bool:
        with self._lock:
            return len(self._recent(client, time.monotonic())) >= self.block_after

    def fail(self, client: str) -> float:
        """Record a failure; the delay to apply before answering."""
        with self._lock:
            now = time.monotonic()
            times = self._recent(client, now)
            times.append(now)
            over = len(times) - self.slow_after
            return min(self.delay_s * over, 2.0) if over > 0 else 0.0
