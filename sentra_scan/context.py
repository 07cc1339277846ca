"""Account context for a finding: whose credential it is, and where.

Given a fragment and a finding in it, read the record the finding sits in (at most `WINDOW`
lines up and down, never past the record's boundary) for the fields that identify the
account: a user name, login, e-mail or account, a host, server, URL or registry, a database.
Records end where their syntax says: the enclosing XML element, the enclosing JSON object
(nested objects are skipped), and in flat files (`.env`, INI, YAML, `.esmtprc`, `.netrc`,
code) a blank line, an INI section, a `machine` line or a shallower indentation. In flat
files a prefixed key keeps to its group: `MAIL_PASSWORD` takes `MAIL_USERNAME`, not
`DB_USERNAME`. `.pgpass` lines and URLs carry their context on the finding's own line.

Context is printed in clear, so a field is never taken when it could be a secret: its name
says password, secret, token, key...; its value is the finding's secret or overlaps it,
has a shape no user or host name has, or looks random. URLs lose everything but the scheme,
host and port. Runs per finding only, on at most 21 lines.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import PurePosixPath
from urllib.parse import urlsplit

from sentra_scan.model import ContextField, Finding, Fragment
from sentra_scan.validators import shannon_entropy

WINDOW = 10  # lines read up and down from the finding
MAX_FIELDS = 6

# Identity names by role, best first: the same value under two names keeps the better name.
_ROLES: dict[str, tuple[str, ...]] = {
    "user": ("username", "user", "login", "loginname", "email", "emailaddress", "account", "accountname", "identity"),
    "host": ("host", "hostname", "server", "servername", "address", "machine", "endpoint", "url", "uri"),
    "database": ("database", "databasename", "dbname", "db"),
}
_ROLE_OF = {name: (role, rank) for role, names in _ROLES.items() for rank, name in enumerate(names)}
_SECRET_WORDS = frozenset(
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
# `$dbhost`, `smtpuser`: a service prefix glued to an identity name
_GLUED = re.compile(r"^(?:db|sql|mysql|pg|mongo|redis|ldap|smtp|imap|pop|mail|ftp|sftp|ssh|proxy|remote|admin)(\w+)$")

_WORD = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+")
_XML_ELEMENT = re.compile(r"<([A-Za-z_][\w.:-]*)(?:\s[^<>]*)?>([^<]*)</\1\s*>")
_XML_ATTR = re.compile(r"""([A-Za-z_][\w.:-]*)\s*=\s*(?:"([^"]*)"|'([^']*)')""")
_DEFINE = re.compile(r"""define\s*\(\s*(['"])(\w+)\1\s*,\s*(['"])(.*?)\3""")
_QUOTED_KEY = re.compile(r"""(["'])([\w.\- ]+?)\1\s*(?::|=>)\s*(?:(["'])(.*?)\3|([^\s,{}\[\]'"]+))""")
_ASSIGN = re.compile(r"""^\s*(?:export\s+|set\s+)?\$?([A-Za-z_][\w.\-]*)\s*(?::=|=|:(?!//))\s*(.*?)\s*$""")
_TOKEN = re.compile(r""""[^"]*"|'[^']*'|\S+""")
_KEY_BEFORE = re.compile(r"""([A-Za-z_][\w.\-]*)['"]?\s*(?:=>|:=|[:=,]|\s)\s*['"`]?$""")
_JSON_OPENER = re.compile(r"""^\s*"([^"\s]*(?:\.|://)[^"\s]*)"\s*:\s*\{\s*$""")
_STRINGS = re.compile(r""""(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'""")
_XML_OPEN = re.compile(r"^<[A-Za-z][^<>]*(?<!/)>$")
_XML_CLOSE = re.compile(r"^</[^<>]+>$")
_COMMENT = ("#", "//", ";", "<!--", "/*", "*", "--")
_USER_SHAPE = re.compile(r"^[\w.@+\-\\ ]{1,100}$")
_HOST_SHAPE = re.compile(r"^(?:[\w\-]+(?:\.[\w\-]+)*|\[[0-9a-fA-F:.]+\])(?::\d{1,5})?$")
_DB_SHAPE = re.compile(r"^[\w.\-]{1,64}$")
_URL_CREDS = re.compile(r"([a-z][\w+.\-]*)://([^\s:/?#@\"'<>`]{1,64}):$", re.IGNORECASE)
_URL_HOST = re.compile(r"^@([\w.\-]+|\[[0-9a-fA-F:.]+\])(?::(\d{1,5}))?(?:/([\w.\-]{1,64}))?")
_PGPASS = frozenset((".pgpass", "pgpass.conf"))
_DOCKER = frozenset((".dockercfg", "config.json"))
_NOT_VALUES = frozenset(("", "null", "none", "nil", "true", "false", "undefined", "*"))

Pair = tuple[str, str]


def words(key: str) -> list[str]:
    """`sshUserName` -> ssh, user, name; `DB_USERNAME` -> db, username."""
    return [w.lower() for w in _WORD.findall(key)]


def role_of(key: str) -> tuple[str, int] | None:
    """The identity role a key names, with its rank, or None (secret-like names never)."""
    w = words(key)
    if not w or _SECRET_WORDS.intersection(w) or any(p in key.lower() for p in _SECRET_PARTS):
        return None
    if len(w) >= 2:
        if w[-2] + w[-1] in _ROLE_OF:
            return _ROLE_OF[w[-2] + w[-1]]
        if w[-1] == "address" and w[-2] not in _ADDRESS_OWNERS:
            return None
    if w[-1] not in _ROLE_OF and (m := _GLUED.match(w[-1])):
        return _ROLE_OF.get(m.group(1))
    return _ROLE_OF.get(w[-1])


def _looks_random(text: str) -> bool:
    return len(text) >= 12 and shannon_entropy(text) >= 3.5 and any(c.isdigit() for c in text)


def clean_value(role: str, raw: str) -> str | None:
    """The value as shown, or None when it is empty, a template or could be a secret."""
    value = raw.strip().rstrip(",;").strip().strip("\"'`").strip()
    if value.lower() in _NOT_VALUES or value.isdigit() or len(value) > 200:
        return None
    if "://" in value:
        if role != "host":
            return None
        parts = urlsplit(value)
        try:
            host, port = parts.hostname, parts.port
        except ValueError:
            return None
        if not parts.scheme or not host or not _HOST_SHAPE.match(host):
            return None
        return f"{parts.scheme}://{host}" + (f":{port}" if port else "")
    if role == "user":
        local = value.split("@", 1)[0]
        return value if _USER_SHAPE.match(value) and not _looks_random(local) else None
    if role == "host":
        return value if _HOST_SHAPE.match(value) and not ("." not in value and _looks_random(value)) else None
    return value if _DB_SHAPE.match(value) and not _looks_random(value) else None


def pairs(line: str) -> list[Pair]:
    """The key/value pairs a line holds, in whichever syntax it uses."""
    text = line.strip().removeprefix("- ")
    if text.startswith("<"):
        found = [(m.group(1), m.group(2)) for m in _XML_ELEMENT.finditer(text)]
        return found + [(m.group(1), m.group(2) or m.group(3) or "") for m in _XML_ATTR.finditer(text)]
    found = [(m.group(2), m.group(4)) for m in _DEFINE.finditer(text)]
    if found:
        return found
    found = [(m.group(2), m.group(4) if m.group(3) else m.group(5)) for m in _QUOTED_KEY.finditer(text)]
    if found:
        return found
    m = _ASSIGN.match(text)
    if m:
        return [(m.group(1), re.sub(r"\s+[#;].*$", "", m.group(2)))]
    tokens = [t.strip("\"'") for t in _TOKEN.findall(text)]
    if tokens[:1] == ["default"]:  # .netrc's default entry has no value
        tokens = tokens[1:]
    if not tokens or not (role_of(tokens[0]) or _SECRET_WORDS.intersection(words(tokens[0]))):
        return []  # `word value` lines only where the first word is a credential field's name
    return [(tokens[i], tokens[i + 1]) for i in range(0, len(tokens) - 1, 2)]


def _brackets(line: str) -> str:
    return "".join(c for c in _STRINGS.sub("", line) if c in "{}[]")


def _json_side(lines: Sequence[str], order: Sequence[int], up: bool) -> Iterator[tuple[int, str | None]]:
    """Lines of the enclosing JSON object, nested objects skipped; on the way up, a host-keyed
    object's key line comes last with that key (docker's `auths`, composer's `http-basic`)."""
    depth = 0
    for i in order:
        marks = _brackets(lines[i])
        if not marks:
            if depth == 0:
                yield i, None
            continue
        for c in reversed(marks) if up else marks:
            if (c in "}]") == up:
                depth += 1
            elif depth == 0:
                if up and (m := _JSON_OPENER.match(lines[i])):
                    yield i, m.group(1)
                return
            else:
                depth -= 1


def _xml_side(lines: Sequence[str], order: Sequence[int], up: bool) -> Iterator[tuple[int, str | None]]:
    """Lines of the enclosing XML element, child elements spanning lines skipped."""
    depth = 0
    for i in order:
        text = lines[i].strip()
        opens, closes = bool(_XML_OPEN.match(text)), bool(_XML_CLOSE.match(text))
        if (closes and up) or (opens and not up):
            depth += 1
        elif opens or closes:
            if depth == 0:
                return
            depth -= 1
        elif depth == 0:
            yield i, None


def _indent(line: str) -> int:
    """The column a line's content starts at; a YAML list item's content after its `- `."""
    text = line.lstrip()
    return len(line) - len(text) + (2 if text.startswith("- ") else 0)


def _record_start(text: str) -> bool:
    """A `.netrc` entry or a YAML list item begins a record."""
    return text.startswith("- ") or re.match(r"^(?:machine|default)\b", text) is not None


def _flat_side(lines: Sequence[str], order: Sequence[int], up: bool, base: int) -> Iterator[tuple[int, str | None]]:
    """Lines of a flat record: up to a blank line, an INI section, a shallower indentation or
    a `.netrc` entry; comments and deeper (nested) lines skipped."""
    for i in order:
        text = lines[i].strip()
        if not text or re.match(r"^\[[^\]]+\]$", text):
            return
        if text.startswith(_COMMENT):
            continue
        indent = _indent(lines[i])
        if indent < base or (_record_start(text) and not up):
            return
        if indent == base:
            yield i, None
        if _record_start(text):
            return


def _window(numbers: Sequence[int], index: int, step: int) -> list[int]:
    """Indices up (step -1) or down (+1) from `index`, stopping at a gap in line numbers."""
    out: list[int] = []
    i = index
    while len(out) < WINDOW and 0 <= i + step < len(numbers) and numbers[i + step] - numbers[i] == step:
        i += step
        out.append(i)
    return out


def _sides(
    fragment: Fragment, index: int, column: int
) -> tuple[list[Iterator[tuple[int, str | None]]], list[str] | None]:
    """The walks up and down the finding's record, and the key group a flat record keeps to."""
    lines, line = fragment.lines, fragment.lines[index]
    text = line.strip()
    up, down = _window(fragment.line_numbers, index, -1), _window(fragment.line_numbers, index, 1)
    if text.startswith("<"):
        return [_xml_side(lines, up, True), _xml_side(lines, down, False)], None
    if fragment.path.endswith(".json") or (text.startswith(('"', "{")) and not _brackets(line)):
        return [_json_side(lines, up, True), _json_side(lines, down, False)], None
    base = _indent(line)
    walks = [_flat_side(lines, down, False, base)]
    if not _record_start(text):
        walks.insert(0, _flat_side(lines, up, True, base))
    m = _KEY_BEFORE.search(line[: max(column - 1, 0)])
    # `MAIL_PASSWORD` keeps to `MAIL_*`, `spring.mail.password` to `spring.mail.*`
    key = m.group(1) if m and (m.group(1).isupper() or "." in m.group(1)) else ""
    w = words(key)
    return walks, w[: next((n for n, x in enumerate(w) if x in _SECRET_WORDS), 0)]


Field = tuple[int, str, str, str, int]  # line index, key, raw value, role, rank


def _record_fields(fragment: Fragment, index: int, column: int, secret: str) -> Iterator[Field]:
    """The identity fields of the finding's record, its own line first (not the field holding
    the secret: a URL with credentials is read by `_same_line`)."""
    for key, value in pairs(fragment.lines[index]):
        if secret not in value and (role := role_of(key)):
            yield index, key, value, *role
    walks, group = _sides(fragment, index, column)
    docker = PurePosixPath(fragment.path).name in _DOCKER
    for walk in walks:
        for i, object_key in walk:
            if object_key is not None:
                yield i, "registry" if docker else "host", object_key, "host", 0
                continue
            for key, value in pairs(fragment.lines[i]):
                role = role_of(key)
                if role and (not group or words(key)[: len(group)] == group):
                    yield i, key, value, *role


def _same_line(fragment: Fragment, index: int, start: int, end: int) -> Iterator[Field]:
    """Context the finding's own line carries: a `.pgpass` entry, a URL's user and host."""
    line = fragment.lines[index]
    if PurePosixPath(fragment.path).name in _PGPASS:
        cols = re.split(r"(?<!\\):", line.strip())
        if len(cols) == 5:  # hostname:port:database:username:password
            yield index, "hostname", cols[0], "host", 0
            yield index, "database", cols[2], "database", 0
            yield index, "username", cols[3], "user", 0
    m = _URL_CREDS.search(line[:start])
    h = _URL_HOST.match(line[end:])
    if m and h:
        yield index, "url user", m.group(2), "user", 0
        yield index, "url host", h.group(1) + (f":{h.group(2)}" if h.group(2) else ""), "host", 0
        if h.group(3):
            yield index, "url database", h.group(3), "database", 0


def _overlaps(value: str, secret: str) -> bool:
    v, s = value.lower(), secret.lower()
    return bool(s) and (s in v or (len(v) >= 3 and v in s))


def find_context(fragment: Fragment, line: int, column: int, end_column: int, secret: str) -> tuple[ContextField, ...]:
    """The account context of a finding at `line` (a line number of the fragment), columns
    1-based. One field per value: the better-ranked name, then the nearer line."""
    index = bisect_left(fragment.line_numbers, line)
    if index >= len(fragment.line_numbers) or fragment.line_numbers[index] != line:
        return ()
    best: dict[tuple[str, str], tuple[int, int, ContextField]] = {}
    fields = [
        *_same_line(fragment, index, column - 1, end_column - 1),
        *_record_fields(fragment, index, column, secret),
    ]
    for i, key, raw, role, rank in fields:
        value = clean_value(role, raw)
        if value is None or _overlaps(value, secret):
            continue
        # one field per value: FileZilla's <Account> repeating its <Host>, .esmtprc's identity
        # repeating its username; a database named like its user is kept
        same = ("database" if role == "database" else "account", value.lower())
        score = (rank, abs(i - index))
        if same not in best or score < best[same][:2]:
            best[same] = (*score, ContextField(fragment.line_numbers[i], key, value, role))
    chosen = sorted((f for *_, f in best.values()), key=lambda f: (abs(f.line - line), f.line))[:MAX_FIELDS]
    return tuple(sorted(chosen, key=lambda f: f.line))


def with_context(finding: Finding, fragment: Fragment) -> Finding:
    """The finding with its account context, when its record has any."""
    loc = finding.location
    fields = find_context(fragment, loc.line, loc.column, loc.end_column, finding.secret.reveal())
    return replace(finding, context=fields) if fields else finding
