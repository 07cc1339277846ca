"""TEST-ONLY keyring backends for unit tests, passed explicitly through
`select_source(keyring_backend=...)`. The product never imports this module.

`MemoryKeyring` keeps entries in a dict and records every call, so a test can assert that
a probe only read (no `set_password`). `PlaintextFileKeyring` pretends to be a
`keyrings.alt` plaintext backend, which Sentra must refuse to choose on the user's behalf.
"""

from __future__ import annotations


class MemoryKeyring:
    """An in-memory credential store that passes `usable_keyring` (positive priority)."""

    priority = 1.0

    def __init__(self) -> None:
        self.entries: dict[tuple[str, str], str] = {}
        self.calls: list[tuple[str, str, str]] = []  # (method, service, username): never a value

    def get_password(self, service: str, username: str) -> str | None:
        self.calls.append(("get_password", service, username))
        return self.entries.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.calls.append(("set_password", service, username))
        self.entries[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        self.calls.append(("delete_password", service, username))
        self.entries.pop((service, username), None)

    def methods(self) -> list[str]:
        return [c[0] for c in self.calls]


class PlaintextFileKeyring(MemoryKeyring):
    """Looks like keyrings.alt's plaintext file backend (module name and all)."""

    priority = 0.5


PlaintextFileKeyring.__module__ = "keyrings.alt.file"
