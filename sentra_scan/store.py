"""The secret store: `secrets.enc`, each value sealed on its own (AES-256-GCM through the
crypto module, associated data binding it to the store id and the entry's path), one entry
a line, sorted, so two people's edits to different entries merge without conflict.

    # sentra store v1 <store id>
    @audit <sealed hash of the audit log's last line>
    dev/STRIPE_KEY <base64 sealed value>

Entries are named by path (`dev/STRIPE_KEY`). Every mutation appends to the audit log
beside the store (no values), and the store keeps a sealed anchor of the log's last hash,
so an edited, deleted or truncated log is detected.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from sentra_scan import auditlog
from sentra_scan.errors import KeyStateError, UsageError
from sentra_scan.keys import DataKeys, secure_dir, state_lock, write_private
from sentra_scan.sources.gitcmd import git

STORE_DIR = ".sentra"
STORE_FILE = "secrets.enc"
HEADER = "# sentra store v1"
_PATH = re.compile(r"^[A-Za-z0-9_.-]+(?:/[A-Za-z0-9_.-]+)+$")


def check_path(path: str) -> str:
    if not _PATH.match(path) or ".." in path.split("/"):
        raise UsageError(f"invalid entry path {path!r}", hint="use ENV/NAME, e.g. dev/STRIPE_KEY")
    return path


def default_location(repo_top: Path) -> Path:
    return repo_top / STORE_DIR / STORE_FILE


def exclude_from_git(repo_top: Path) -> None:
    """Add `.sentra/` to `.git/info/exclude` so the store is never picked up by `git add`."""
    out = git(["rev-parse", "--path-format=absolute", "--git-common-dir"], repo_top, check=False).strip()
    if not out:
        return
    exclude = Path(out) / "info" / "exclude"
    exclude.parent.mkdir(parents=True, exist_ok=True)
    text = exclude.read_text(encoding="utf-8") if exclude.exists() else ""
    if f"/{STORE_DIR}/" not in text.split("\n"):
        exclude.write_text(text + ("" if text.endswith("\n") or not text else "\n") + f"/{STORE_DIR}/\n", "utf-8")


@dataclass
class Store:
    path: Path
    keys: DataKeys
    sealed: dict[str, bytes]
    anchor: bytes | None
    actor: str

    # -- file format -------------------------------------------------------------------

    @classmethod
    def open(cls, path: Path, keys: DataKeys, *, actor: str = "") -> Store:
        if not path.exists():
            return cls(path, keys, {}, None, actor)
        try:
            lines = path.read_text(encoding="ascii").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise KeyStateError(f"cannot read the store {path}: {exc}") from None
        if not lines or not lines[0].startswith(HEADER + " "):
            raise KeyStateError(f"{path} is not a Sentra store (bad header)")
        store_id = lines[0][len(HEADER) + 1 :].strip()
        if store_id != keys.store_id:
            raise KeyStateError(
                f"{path} belongs to another key store ({store_id[:8]}…; this repository's: {keys.store_id[:8]}…)"
            )
        sealed: dict[str, bytes] = {}
        anchor = None
        for n, line in enumerate(lines[1:], 2):
            name, _, value = line.partition(" ")
            try:
                blob = base64.b64decode(value, validate=True)
            except (binascii.Error, ValueError):
                raise KeyStateError(f"{path}: line {n} is corrupt") from None
            if name == "@audit":
                anchor = blob
            else:
                sealed[check_path(name)] = blob
        return cls(path, keys, sealed, anchor, actor)

    def save(self) -> None:
        secure_dir(self.path.parent)
        lines = [f"{HEADER} {self.keys.store_id}"]
        if self.anchor is not None:
            lines.append("@audit " + base64.b64encode(self.anchor).decode())
        lines += [f"{name} {base64.b64encode(blob).decode()}" for name, blob in sorted(self.sealed.items())]
        write_private(self.path, ("\n".join(lines) + "\n").encode("ascii"))

    # -- values --------------------------------------------------------------------------

    def _name(self, path: str) -> str:
        return f"{self.keys.store_id}/{path}"

    def names(self) -> list[str]:
        return sorted(self.sealed)

    def get(self, path: str) -> str:
        blob = self.sealed.get(check_path(path))
        if blob is None:
            raise UsageError(f"no entry {path!r} in the store", hint="see 'sentra secrets list'")
        return self.keys.open(blob, purpose="store-entry", name=self._name(path)).decode("utf-8")

    def items(self, prefixes: Iterable[str]) -> Iterator[tuple[str, str]]:
        wanted = tuple(prefixes)
        for path in self.names():
            if path.startswith(wanted):
                yield path, self.get(path)

    # -- mutations (each audited) --------------------------------------------------------

    def log_action(self, action: str, path: str) -> None:
        self._log(action, path)

    def _log(self, action: str, path: str) -> None:
        secure_dir(self.path.parent)
        if self.anchor is not None:  # refuse to extend a log that no longer matches the store
            verdict = auditlog.AuditLog(self.path.with_name(auditlog.LOG_FILE)).verify(self.verify_anchor())
            if not verdict.ok:
                raise KeyStateError(
                    "the store's audit log failed verification: " + "; ".join(verdict.problems),
                    hint="investigate with 'sentra secrets audit --verify' before changing the store",
                )
        log = auditlog.AuditLog(self.path.with_name(auditlog.LOG_FILE))
        last = log.append(action=action, path=path, actor=self.actor)
        self.anchor = self.keys.seal(last.encode(), purpose="audit-anchor", name=self.keys.store_id)

    def verify_anchor(self) -> str:
        """The log's last hash as the store last saw it ('' for a store with no history)."""
        if self.anchor is None:
            return ""
        return self.keys.open(self.anchor, purpose="audit-anchor", name=self.keys.store_id).decode()

    def _reload(self) -> None:
        """Under the state lock: the current keys and the file as it is now on disk."""
        self.keys.refresh()
        current = Store.open(self.path, self.keys, actor=self.actor)
        self.sealed, self.anchor = current.sealed, current.anchor

    def set(self, path: str, value: str, *, action: str = "set") -> None:
        check_path(path)
        with state_lock(self.keys.state_dir):
            self._reload()
            self.sealed[path] = self.keys.seal(value.encode("utf-8"), purpose="store-entry", name=self._name(path))
            self._log(action, path)
            self.save()

    def remove(self, path: str) -> None:
        check_path(path)
        with state_lock(self.keys.state_dir):
            self._reload()
            if path not in self.sealed:
                raise UsageError(f"no entry {path!r} in the store")
            del self.sealed[path]
            self._log("rm", path)
            self.save()

    def reseal(self, *, locked: bool = False) -> int:
        """Re-encrypt every entry (and the anchor) with the active data key. Rotation calls
        it holding the state lock (`locked`)."""
        if not locked:
            with state_lock(self.keys.state_dir):
                self._reload()
                return self.reseal(locked=True)
        for path in list(self.sealed):
            value = self.get(path)
            self.sealed[path] = self.keys.seal(value.encode("utf-8"), purpose="store-entry", name=self._name(path))
        self._log("rotate", "*")
        self.save()
        return len(self.sealed)


def parse_env_file(text: str) -> list[tuple[str, str]]:
    """`KEY=value` lines of a .env file (export prefix, quotes and comments handled)."""
    out = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[len("export ") :].lstrip()
        key, sep, value = line.partition("=")
        key = key.strip()
        if not sep or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
            continue
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        elif " #" in value:
            value = value.split(" #", 1)[0].rstrip()
        out.append((key, value))
    return out
