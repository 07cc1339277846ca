"""Key sources and the envelope of data keys.

A random data key (DEK) encrypts everything; it is stored only wrapped (sealed) by a
key-encryption key (KEK) from one source, in order:

1. `SENTRA_KEY`: a base64 32-byte key;
2. `SENTRA_KEY_FILE`: a file holding one (refused if group- or world-readable);
3. `SENTRA_PASSWORD` (or an interactive prompt with `SENTRA_KEY_SOURCE=password`):
   PBKDF2-HMAC-SHA256, random salt, iteration count stored beside the wrapped keys;
4. the OS credential store through `keyring` (the default when nothing is set).

No usable source is an error that says how to provide one: never plaintext, never a
file-based keyring chosen on the user's behalf. The keyring probe only reads.

`keys.json` (0600, in a 0700 directory) holds the wrapped data keys by key id and the id
of the active one; rotation adds a key, re-encrypts, then drops the old one, so every
ciphertext on disk always has its key in the file.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import os
import secrets
import stat
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from sentra_scan import crypto
from sentra_scan.errors import KeyStateError

KEYS_FILE = "keys.json"
KEYS_FORMAT = 1
KEYRING_SERVICE = "sentra-scan"
NO_SOURCE_HINT = (
    "provide a key source: unlock your OS credential store (Secret Service / Keychain / Credential Manager), "
    "or set SENTRA_KEY (base64 of 32 random bytes: `openssl rand -base64 32`), SENTRA_KEY_FILE (a file "
    "readable only by you), or SENTRA_PASSWORD"
)


class KeyringBackend(Protocol):
    def get_password(self, service: str, username: str) -> str | None: ...
    def set_password(self, service: str, username: str, password: str) -> None: ...
    def delete_password(self, service: str, username: str) -> None: ...


def secure_dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(path, 0o700)
    return path


def write_private(path: Path, data: bytes, *, exclusive: bool = False) -> bool:
    """Write atomically (temp file, fsync, rename), mode 0600. With `exclusive`, only if
    `path` does not exist yet (False when another process created it first)."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        if exclusive:
            try:
                os.link(tmp, path)  # atomic create-if-absent, of a complete file
            except FileExistsError:
                return False
            except OSError:  # a file system without hard links: check, then rename
                if path.exists():
                    return False
                os.replace(tmp, path)
            finally:
                tmp.unlink(missing_ok=True)
        else:
            os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    dfd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)
    return True


def _b64key(text: str, what: str) -> bytes:
    try:
        key = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise KeyStateError(f"{what} is not valid base64", hint=NO_SOURCE_HINT) from None
    if len(key) != crypto.KEY_LEN:
        raise KeyStateError(f"{what} must decode to 32 bytes, got {len(key)}", hint=NO_SOURCE_HINT)
    return key


@dataclass(frozen=True)
class KeySource:
    """Where the key-encryption key comes from. `describe()` never shows key material."""

    kind: str  # "key", "file", "password", "keyring"
    detail: str = ""
    _secret: str = ""  # the base64 key, or the password (never printed)
    keyring: Any = None

    def __repr__(self) -> str:
        return f"KeySource({self.kind!r}, {self.detail!r})"

    def describe(self) -> str:
        return {
            "key": "SENTRA_KEY (environment)",
            "file": f"key file {self.detail}",
            "password": f"password ({self.detail})",
            "keyring": f"OS credential store ({self.detail})",
        }[self.kind]

    def kek(self, envelope: Mapping[str, Any], *, create: bool) -> bytes:
        if self.kind in ("key", "file"):
            return _b64key(self._secret, self.describe())
        if self.kind == "password":
            kdf = envelope.get("kdf") or {}
            salt = base64.b64decode(kdf.get("salt", ""))
            return crypto.derive_password_key(self._secret, salt, int(kdf.get("iterations", 0)))
        user = str(envelope.get("keyring_user", ""))
        stored = self.keyring.get_password(KEYRING_SERVICE, user) if user else None
        if stored is None:
            if not create:
                raise KeyStateError(
                    f"the OS credential store has no Sentra key for this repository ({user or 'none'})",
                    hint="restore it, or use the source the data was encrypted with ('sentra key status')",
                )
            stored = base64.b64encode(crypto.new_key()).decode()
            self.keyring.set_password(KEYRING_SERVICE, user, stored)
        return _b64key(stored, "the key in the OS credential store")


def usable_keyring(backend: Any) -> bool:
    """A real credential store: not the fail/null backends, not a plaintext file."""
    module = type(backend).__module__
    name = type(backend).__name__
    if module.startswith("keyrings.alt") or module.startswith("keyring.backends.fail") or name == "NullKeyring":
        return False
    children = getattr(backend, "backends", None)
    if children is not None:
        return any(usable_keyring(b) for b in children)
    try:
        return float(backend.priority) > 0
    except Exception:  # a backend whose probe fails is not usable
        return False


def _default_keyring() -> Any:
    import keyring

    return keyring.get_keyring()


def select_source(
    env: Mapping[str, str] | None = None, *, keyring_backend: Any = None, interactive: bool = False
) -> KeySource:
    """The key source the environment asks for, or the OS credential store."""
    env = os.environ if env is None else env
    forced = env.get("SENTRA_KEY_SOURCE", "")
    if env.get("SENTRA_KEY") and forced in ("", "key"):
        _b64key(env["SENTRA_KEY"], "SENTRA_KEY")  # a bad key is reported here, not when first used
        return KeySource("key", "", env["SENTRA_KEY"])
    if env.get("SENTRA_KEY_FILE") and forced in ("", "file"):
        return _file_source(Path(env["SENTRA_KEY_FILE"]))
    if forced == "password" or (env.get("SENTRA_PASSWORD") and forced == ""):
        password = env.get("SENTRA_PASSWORD")
        if not password and interactive:
            import getpass

            password = getpass.getpass("Sentra password: ")
        if not password:
            raise KeyStateError("SENTRA_KEY_SOURCE=password but no SENTRA_PASSWORD and no terminal to ask on")
        return KeySource("password", "PBKDF2-HMAC-SHA256", password)
    if forced not in ("", "keyring"):
        raise KeyStateError(f"SENTRA_KEY_SOURCE={forced!r} is not one of key, file, password, keyring")
    backend = keyring_backend if keyring_backend is not None else _default_keyring()
    if not usable_keyring(backend):
        raise KeyStateError(
            f"no key source: the OS credential store is not available ({type(backend).__name__})",
            hint=NO_SOURCE_HINT,
        )
    return KeySource("keyring", f"{type(backend).__module__}.{type(backend).__name__}", keyring=backend)


def _file_source(path: Path) -> KeySource:
    try:
        st = path.stat()
        text = path.read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError) as exc:
        raise KeyStateError(f"cannot read key file {path}: {exc}", hint=NO_SOURCE_HINT) from None
    if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise KeyStateError(
            f"key file {path} is readable by others (mode {stat.S_IMODE(st.st_mode):o})",
            hint=f"chmod 600 {path}",
        )
    _b64key(text, f"key file {path}")
    return KeySource("file", str(path), text)


@contextlib.contextmanager
def state_lock(state_dir: Path) -> Iterator[None]:
    """An exclusive lock on a state directory: held by rotation for its whole run and by
    every write, so nothing is sealed with a key a concurrent rotation is dropping."""
    import fcntl

    secure_dir(state_dir)
    fd = os.open(state_dir / ".lock", os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


class DataKeys:
    """The unwrapped data keys of one state directory, in memory."""

    def __init__(self, state_dir: Path, envelope: dict[str, Any], keys: dict[str, bytes], source: KeySource) -> None:
        self.state_dir = state_dir
        self.envelope = envelope
        self.keys = keys
        self.source = source

    @property
    def store_id(self) -> str:
        return str(self.envelope["store_id"])

    @property
    def active_id(self) -> str:
        return str(self.envelope["active"])

    @property
    def active(self) -> bytes:
        return self.keys[self.active_id]

    def lookup_key(self) -> bytes:
        active = self.active
        cached = getattr(self, "_lookup_key", None)
        if cached is None or cached[0] != active:  # derived once per active key
            cached = self._lookup_key = (active, crypto.subkey(active, "sentra lookup v1"))
        return cached[1]

    def seal(self, data: bytes, *, purpose: str, name: str) -> bytes:
        return crypto.seal(self.active, data, purpose=purpose, name=name)

    def open(self, blob: bytes, *, purpose: str, name: str) -> bytes:
        kid = crypto.sealed_key_id(blob).hex()
        key = self.keys.get(kid)
        if key is None:
            raise crypto.DecryptError(f"{purpose} '{name}' was encrypted with a key this repository does not hold")
        return crypto.open_sealed(key, blob, purpose=purpose, name=name)

    # -- the envelope on disk ------------------------------------------------------

    @classmethod
    def open_or_create(cls, state_dir: Path, source: KeySource, *, create: bool = True) -> DataKeys:
        path = state_dir / KEYS_FILE
        if path.exists():
            envelope = _read_envelope(path)
            _check_source_kind(path, envelope, source)
            kek = source.kek(envelope, create=False)
            keys = {}
            for kid, wrapped in envelope["keys"].items():
                blob = base64.b64decode(wrapped)
                try:
                    keys[kid] = crypto.open_sealed(kek, blob, purpose="data-key", name=f"{envelope['store_id']}:{kid}")
                except crypto.DecryptError:
                    raise KeyStateError(
                        f"{source.describe()} cannot unlock the keys in {path}: wrong key or password",
                        hint="use the key source this repository's state was created with ('sentra key status')",
                    ) from None
            return cls(state_dir, envelope, keys, source)
        if not create:
            raise KeyStateError(f"no encrypted state yet in {state_dir}", hint="it is created by the first scan")
        secure_dir(state_dir)
        envelope = {"version": KEYS_FORMAT, "store_id": secrets.token_hex(16), "source": source.kind, "keys": {}}
        if source.kind == "password":
            envelope["kdf"] = {
                "name": "pbkdf2-sha256",
                "salt": base64.b64encode(os.urandom(16)).decode(),
                "iterations": crypto.PBKDF2_DEFAULT_ITERATIONS,
            }
        if source.kind == "keyring":
            envelope["keyring_user"] = f"kek:{envelope['store_id']}"
        dek = crypto.new_key()
        kid = crypto.key_id(dek).hex()
        envelope["active"] = kid
        data = cls(state_dir, envelope, {kid: dek}, source)
        if not data.save(source.kek(envelope, create=True), exclusive=True):
            # Another process created the state first (two first scans at once): use its keys.
            if source.kind == "keyring":
                with contextlib.suppress(Exception):
                    source.keyring.delete_password(KEYRING_SERVICE, envelope["keyring_user"])
            return cls.open_or_create(state_dir, source, create=False)
        return data

    def refresh(self) -> None:
        """Re-read keys.json (under `state_lock`): another process may have rotated."""
        fresh = DataKeys.open_or_create(self.state_dir, self.source, create=False)
        self.envelope, self.keys = fresh.envelope, fresh.keys

    def save(self, kek: bytes, *, exclusive: bool = False) -> bool:
        wrapped = {
            kid: base64.b64encode(crypto.seal(kek, key, purpose="data-key", name=f"{self.store_id}:{kid}")).decode()
            for kid, key in self.keys.items()
        }
        self.envelope["keys"] = wrapped
        body = json.dumps(self.envelope, indent=2, sort_keys=True).encode()
        return write_private(self.state_dir / KEYS_FILE, body, exclusive=exclusive)

    def add_key(self) -> str:
        """Rotation step 1: a new active data key; the old ones stay until re-encrypted."""
        dek = crypto.new_key()
        kid = crypto.key_id(dek).hex()
        self.keys[kid] = dek
        self.envelope["active"] = kid
        self.save(self.source.kek(self.envelope, create=False))
        return kid

    def drop_inactive(self) -> None:
        """Rotation's last step, once nothing is encrypted with the old keys."""
        self.keys = {self.active_id: self.active}
        self.save(self.source.kek(self.envelope, create=False))

    def rewrap(self, new_source: KeySource) -> None:
        """Wrap the same data keys with a new key-encryption key (e.g. a new password)."""
        old_user = self.envelope.get("keyring_user")
        self.envelope["source"] = new_source.kind
        self.envelope.pop("kdf", None)
        if new_source.kind == "password":
            self.envelope["kdf"] = {
                "name": "pbkdf2-sha256",
                "salt": base64.b64encode(os.urandom(16)).decode(),
                "iterations": crypto.PBKDF2_DEFAULT_ITERATIONS,
            }
        if new_source.kind == "keyring":
            self.envelope["keyring_user"] = f"kek:{self.store_id}:{secrets.token_hex(4)}"
        else:
            self.envelope.pop("keyring_user", None)
        self.save(new_source.kek(self.envelope, create=True))
        if old_user and self.source.kind == "keyring" and old_user != self.envelope.get("keyring_user"):
            # The new wrapping is saved; a stale entry that cannot be deleted is harmless.
            with contextlib.suppress(Exception):
                self.source.keyring.delete_password(KEYRING_SERVICE, old_user)
        self.source = new_source


_KIND_NAMES = {
    "key": "a key (SENTRA_KEY or SENTRA_KEY_FILE)",
    "file": "a key (SENTRA_KEY or SENTRA_KEY_FILE)",
    "password": "a password (SENTRA_PASSWORD)",
    "keyring": "the OS credential store",
}


def _check_source_kind(path: Path, envelope: Mapping[str, Any], source: KeySource) -> None:
    """A source of another kind cannot open the keys: say which one they were wrapped with
    (a raw key from SENTRA_KEY or from a key file is the same kind)."""
    kind = str(envelope.get("source", ""))
    raw = {"key", "file"}
    if kind and kind != source.kind and not (kind in raw and source.kind in raw):
        was = _KIND_NAMES.get(kind, kind)
        raise KeyStateError(
            f"the keys in {path} are wrapped by {was}, not by {source.describe()}",
            hint="provide that source (or 'sentra key rewrap --to ...' from it to change it)",
        )


def _read_envelope(path: Path) -> dict[str, Any]:
    try:
        envelope = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise KeyStateError(f"{path} is unreadable or corrupt: {exc}", hint="restore it from a backup") from None
    if not isinstance(envelope, dict) or envelope.get("version") != KEYS_FORMAT:
        raise KeyStateError(
            f"{path}: unsupported format version {envelope.get('version') if isinstance(envelope, dict) else '?'}"
        )
    for field in ("store_id", "active", "keys"):
        if field not in envelope:
            raise KeyStateError(f"{path}: missing {field!r}")
    return envelope
