"""What a field of a credential's record is, and the value it may show as account context.

A field names the account (`user`: a user name, login, e-mail, nick; `host`: a host, server,
URL or registry; `database`; `path`: the remote directory a transfer account works in), or
says how old and how live the credential is (`when`: its record's creation, last use, last
password change or expiry; `usage`: how often it was used). Secret-like names never name an
account; a time or a count is taken only in the strict shape of one (an epoch, an ISO date, a
small number), so a secret never passes for either.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from urllib.parse import urlsplit

from sentra_scan.validators import shannon_entropy

# Identity names by role, best first: the same value under two names keeps the better name.
_ROLES: dict[str, tuple[str, ...]] = {
    "user": (
        "username",
        "user",
        "login",
        "loginname",
        "email",
        "emailaddress",
        "account",
        "accountname",
        "identity",
        "nick",
        "nickname",
    ),
    "host": ("host", "hostname", "server", "servername", "address", "machine", "endpoint", "url", "uri"),
    "database": ("database", "databasename", "dbname", "db"),
    "path": ("remotepath", "remotedir", "remotedirectory", "remoteroot", "remotefolder", "remote"),
}
_ROLE_OF = {name: (role, rank) for role, names in _ROLES.items() for rank, name in enumerate(names)}
SECRET_WORDS = frozenset(
    (
        "pass",
        "passwd",
        "password",
        "passphrase",
        "pwd",
        "secret",
        "secrets",
        "token",
        "key",
        "keys",
        "apikey",
        "auth",
        "credential",
        "credentials",
        "private",
        "salt",
        "hash",
        "signature",
        "sig",
        "cert",
        "otp",
        "pin",
        "cookie",
        "session",
    )
)
_SECRET_PARTS = ("pass", "pwd", "secret", "token")  # inside one-word names: `dbpasswd`, `userpassword`
_ADDRESS_OWNERS = frozenset(("server", "host", "ip", "remote"))
# A service prefix: `$dbhost`, `smtpuser` glued; `sshUserName`, `proxy_password` as a word
_SERVICE_NAMES = "db|sql|mysql|pg|mongo|redis|ldap|smtp|imap|pop|mail|ftp|sftp|ssh|proxy|remote|admin"
SERVICES = frozenset(_SERVICE_NAMES.split("|"))
_GLUED = re.compile(rf"^(?:{_SERVICE_NAMES})(\w+)$")

# Record times and usage: `timeCreated`, `created_at`, `timeLastUsed`, `lastLogin`,
# `timePasswordChanged`, `pwdLastSet`, `expires_at`; `timesUsed`, `use_count`.
_CREATED = frozenset(("created", "creation"))
_LAST_USE = frozenset(("used", "use", "login", "logon", "access", "accessed", "seen", "auth", "authenticated"))
_CHANGED = frozenset(("changed", "change", "set", "updated", "modified", "reset", "rotated"))
_CHANGED_WHAT = frozenset(("password", "passwd", "pwd", "pass", "secret", "key", "token"))
_EXPIRES = frozenset(("expires", "expiry", "expiration", "expire", "expired"))
_COUNTED = frozenset(("use", "used", "uses", "usage", "login", "logins", "logon", "access"))
_EPOCH = re.compile(r"^(?:\d{9,10}|\d{12,13})(?:\.\d{1,6})?$")  # seconds or milliseconds, 1973-2286
_ISO_DATE = re.compile(
    r"^\d{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12]\d|3[01])"
    r"(?:[T ](?:[01]\d|2[0-3]):[0-5]\d(?::[0-5]\d(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}:?\d{2})?)?$"
)
_COUNT = re.compile(r"^\d{1,9}$")

_WORD = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+")
_USER_SHAPE = re.compile(r"^[\w.@+\-\\ ]{1,100}$")
_HOST_SHAPE = re.compile(r"^(?:[\w\-]+(?:\.[\w\-]+)*|\[[0-9a-fA-F:.]+\])(?::\d{1,5})?$")
_DB_SHAPE = re.compile(r"^[\w.\-]{1,64}$")
_PATH_SHAPE = re.compile(r"^~?/[\w.\-~/ ]{1,200}$")
_NOT_VALUES = frozenset(("", "null", "none", "nil", "true", "false", "undefined", "*"))
# Docker Hub, the registry a `docker login` without a server writes: it names no account
_PUBLIC_REGISTRY = re.compile(r"^(?:[\w\-]+\.)*docker\.(?:io|com)$")

ACCOUNT_ROLES = ("user", "host", "database", "path")
RECORD_ROLES = ("when", "usage")  # taken from structured records only


def words(key: str) -> list[str]:
    """`sshUserName` -> ssh, user, name; `DB_USERNAME` -> db, username."""
    return [w.lower() for w in _WORD.findall(key)]


def role_of(key: str) -> tuple[str, int] | None:
    """The identity role a key names, with its rank, or None (secret-like names never)."""
    w = words(key)
    if not w or SECRET_WORDS.intersection(w) or any(p in key.lower() for p in _SECRET_PARTS):
        return None
    if len(w) >= 2:
        if w[-2] + w[-1] in _ROLE_OF:
            return _ROLE_OF[w[-2] + w[-1]]
        if w[-1] == "address" and w[-2] not in _ADDRESS_OWNERS:
            return None
    if w[-1] not in _ROLE_OF and (m := _GLUED.match(w[-1])):
        return _ROLE_OF.get(m.group(1))
    return _ROLE_OF.get(w[-1])


def record_role(key: str) -> str | None:
    """The record role a key names: `when` for a record's creation, last use, password change
    or expiry time, `usage` for its use count. `lastLogin` is a time here, not a login name."""
    names = words(key)
    if not names or (names[-1] in _ROLE_OF and names[-1] not in _LAST_USE):
        return None  # `lastLoginUser`, `lastUsedHost`: a user, a host
    w = set(names)
    if w & _CREATED or w & _EXPIRES or ("last" in w and w & _LAST_USE) or (w & _CHANGED and w & _CHANGED_WHAT):
        return "when"
    if ("times" in w and w & {"used", "use"}) or ("count" in w and w & _COUNTED):
        return "usage"
    return None


def field_role(key: str) -> tuple[str, int] | None:
    """The role of a field of a record (a time or a count first, then an identity)."""
    kind = record_role(key)
    return (kind, 0) if kind else role_of(key)


def looks_random(text: str) -> bool:
    return len(text) >= 12 and shannon_entropy(text) >= 3.5 and any(c.isdigit() for c in text)


def _clean_url(value: str) -> str | None:
    """A URL as its scheme, host and port: credentials, path and query dropped."""
    parts = urlsplit(value)
    try:
        host, port = parts.hostname, parts.port
    except ValueError:
        return None
    if not parts.scheme or not host or not _HOST_SHAPE.match(host):
        return None
    return f"{parts.scheme}://{host}" + (f":{port}" if port else "")


def clean_value(role: str, raw: str) -> str | None:
    """The value as shown, or None when it is empty, a template or could be a secret."""
    value = raw.strip().rstrip(",;").strip().strip("\"'`").strip()
    if role in RECORD_ROLES:
        shape = (_EPOCH, _ISO_DATE) if role == "when" else (_COUNT,)
        return value if any(s.match(value) for s in shape) else None
    if value.lower() in _NOT_VALUES or value.isdigit() or len(value) > 200:
        return None
    if "://" in value:
        return _clean_url(value) if role == "host" else None
    if role == "user":
        local = value.split("@", 1)[0]
        return value if _USER_SHAPE.match(value) and not looks_random(local) else None
    if role == "host":
        return value if _HOST_SHAPE.match(value) and not ("." not in value and looks_random(value)) else None
    if role == "path":
        parts = value.split("/")
        return value if _PATH_SHAPE.match(value) and not any(looks_random(p) for p in parts) else None
    return value if _DB_SHAPE.match(value) and not looks_random(value) else None


def public_registry(key: str) -> bool:
    """Whether a docker config's registry key is Docker Hub (`https://index.docker.io/v1/`,
    `docker.io`, `registry-1.docker.io`...): the default, which says nothing of the account."""
    host = key.split("://", 1)[-1].split("/", 1)[0].rsplit(":", 1)[0].lower()
    return _PUBLIC_REGISTRY.match(host) is not None


def readable_time(value: str) -> str:
    """An epoch (seconds or milliseconds) as an ISO date and time in UTC; other values as they are."""
    if not _EPOCH.match(value):
        return value
    seconds = float(value) / (1000 if len(value.split(".")[0]) > 10 else 1)
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
