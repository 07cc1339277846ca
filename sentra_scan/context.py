"""Account context for a finding: whose credential it is, where, and how live.

Given a fragment and a finding in it, read the record the finding sits in (at most `WINDOW`
lines up and down, never past the record's boundary) for the fields that identify the
account: a user name, login, e-mail, account or nick, a host, server, URL or registry, a
database, a remote directory (`sentra_scan.context_fields` says which name is which). Records
end where their syntax says: the enclosing XML element, the enclosing JSON object (nested
objects are skipped), and in flat files (`.env`, INI, YAML, `.esmtprc`, `.netrc`, code) a
blank line, an INI section, a `machine` line or a shallower indentation. `.pgpass` lines and
URLs carry their context on the finding's own line.

Which fields are the credential's: in flat files a prefixed key keeps to its group
(`MAIL_PASSWORD` takes `MAIL_USERNAME`, not `DB_USERNAME`); a service-prefixed name prefers
its service's fields when the record has any (`sshPassword` takes `sshHost`, not the
database connection's `serverHost`). A JSON record with no host takes the nearest host of the
object holding it (Robomongo's `credentials` entry, its connection's `serverHost`). One
database per credential, the nearest. A docker config's Docker Hub key is no account context
(every `docker login` to the default registry writes it); a private registry's is.

A structured record (a JSON object, an XML element, a YAML mapping, an INI section) also gives
its own times and use count (`timeCreated`, `timeLastUsed`, `timePasswordChanged`, `created_at`,
`lastLogin`, `timesUsed`...): how old and how live the credential is. Never from free text.

Context is printed in clear, so a field is never taken when it could be a secret: its name
says password, secret, token, key... (a time or a count only in the strict shape of one); its
value is the finding's secret or overlaps it, has a shape no user or host name has, or looks
random. URLs lose everything but the scheme, host and port. Runs per finding only, on at most
21 lines.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import PurePosixPath
from typing import NamedTuple

from sentra_scan.context_fields import (
    ACCOUNT_ROLES,
    RECORD_ROLES,
    SECRET_WORDS,
    SERVICES,
    clean_value,
    field_role,
    public_registry,
    role_of,
    words,
)
from sentra_scan.model import ContextField, Finding, Fragment

WINDOW = 10  # lines read up and down from the finding
MAX_FIELDS = 6  # account fields (user, host, database, path)
MAX_RECORD_FIELDS = 4  # record times and use counts

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
_URL_CREDS = re.compile(r"([a-z][\w+.\-]*)://([^\s:/?#@\"'<>`]{1,64}):$", re.IGNORECASE)
_URL_HOST = re.compile(r"^@([\w.\-]+|\[[0-9a-fA-F:.]+\])(?::(\d{1,5}))?(?:/([\w.\-]{1,64}))?")
_PGPASS = frozenset((".pgpass", "pgpass.conf"))
_DOCKER = frozenset((".dockercfg", "config.json"))
# flat files whose records are structured (a YAML mapping, an INI or TOML section): record times are read there
_STRUCTURED = frozenset((".yml", ".yaml", ".ini", ".cfg", ".conf", ".toml"))

Pair = tuple[str, str]


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
    if not tokens or not (role_of(tokens[0]) or SECRET_WORDS.intersection(words(tokens[0]))):
        return []  # `word value` lines only where the first word is a credential field's name
    return [(tokens[i], tokens[i + 1]) for i in range(0, len(tokens) - 1, 2)]


def _brackets(line: str) -> str:
    return "".join(c for c in _STRINGS.sub("", line) if c in "{}[]")


Step = tuple[int, str | None, int]  # line index, the key of a host-keyed object, record level


def _json_side(lines: Sequence[str], order: Sequence[int], up: bool) -> Iterator[Step]:
    """Lines of the enclosing JSON object (level 0), then of the object holding it (level 1:
    Robomongo's connection around its `credentials` entry), through the array between them;
    nested objects skipped. On the way up, a host-keyed object's key line ends level 0 with
    that key (docker's `auths`, composer's `http-basic`)."""
    depth = level = 0
    for i in order:
        marks = _brackets(lines[i])
        if not marks:
            if depth == 0:
                yield i, None, level
            continue
        for c in reversed(marks) if up else marks:
            if (c in "}]") == up:
                depth += 1
            elif depth:
                depth -= 1
            elif level == 0:
                if up and c == "{" and (m := _JSON_OPENER.match(lines[i])):
                    yield i, m.group(1), 0
                level = 1
            elif c in "{}":
                return


def _xml_side(lines: Sequence[str], order: Sequence[int], up: bool) -> Iterator[Step]:
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
            yield i, None, 0


def _indent(line: str) -> int:
    """The column a line's content starts at; a YAML list item's content after its `- `."""
    text = line.lstrip()
    return len(line) - len(text) + (2 if text.startswith("- ") else 0)


def _record_start(text: str) -> bool:
    """A `.netrc` entry or a YAML list item begins a record."""
    return text.startswith("- ") or re.match(r"^(?:machine|default)\b", text) is not None


def _flat_side(lines: Sequence[str], order: Sequence[int], up: bool, base: int) -> Iterator[Step]:
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
            yield i, None, 0
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


class _Record(NamedTuple):
    walks: list[Iterator[Step]]
    group: list[str]  # the leading words of the secret's name its fields keep to; [] for any
    strict: bool  # only the group's fields (`MAIL_*`), or the group's when the record has any (`ssh*`)
    structured: bool  # a JSON object, XML element, YAML mapping or INI section: its times are read


def _group(key: str) -> tuple[list[str], bool]:
    """`MAIL_PASSWORD` keeps to `MAIL_*` and `spring.mail.password` to `spring.mail.*`, strictly;
    a service-prefixed name (`sshUserPassword`, `proxy_pass`) prefers its service's fields."""
    w = words(key)
    lead = w[: next((n for n, x in enumerate(w) if x in SECRET_WORDS), 0)]
    if key.isupper() or "." in key:
        return lead, True
    return (lead[:1], False) if lead[:1] and lead[0] in SERVICES else ([], False)


def _record(fragment: Fragment, index: int, column: int) -> _Record:
    """The walks up and down the finding's record, and the key group its fields keep to."""
    lines, line = fragment.lines, fragment.lines[index]
    text = line.strip()
    up, down = _window(fragment.line_numbers, index, -1), _window(fragment.line_numbers, index, 1)
    m = _KEY_BEFORE.search(line[: max(column - 1, 0)])
    group, strict = _group(m.group(1) if m else "")
    if text.startswith("<"):
        return _Record([_xml_side(lines, up, True), _xml_side(lines, down, False)], group, False, True)
    if fragment.path.endswith(".json") or (text.startswith(('"', "{")) and not _brackets(line)):
        return _Record([_json_side(lines, up, True), _json_side(lines, down, False)], group, False, True)
    base = _indent(line)
    walks = [_flat_side(lines, down, False, base)]
    if not _record_start(text):
        walks.insert(0, _flat_side(lines, up, True, base))
    structured = PurePosixPath(fragment.path).suffix.lower() in _STRUCTURED
    return _Record(walks, group, strict, structured)


class _Field(NamedTuple):
    at: int  # the line's index in the fragment
    name: str
    raw: str
    role: str
    rank: int
    level: int = 0  # 1: the object holding the record, whose host is taken when the record has none
    grouped: bool = True  # in the secret's key group, or no group


def _record_fields(fragment: Fragment, index: int, column: int, secret: str) -> Iterator[_Field]:
    """The fields of the finding's record, its own line first (not the field holding the
    secret: a URL with credentials is read by `_same_line`)."""
    rec = _record(fragment, index, column)
    docker = PurePosixPath(fragment.path).name in _DOCKER
    own: Iterator[Step] = iter([(index, None, 0)])
    for walk in (own, *rec.walks):
        for i, object_key, level in walk:
            if object_key is not None:
                if not (docker and public_registry(object_key)):  # Docker Hub: the default, no account
                    yield _Field(i, "registry" if docker else "host", object_key, "host", 0)
                continue
            for key, value in pairs(fragment.lines[i]):
                role = field_role(key)
                if not role or (i == index and secret in value) or (level and role[0] != "host"):
                    continue
                if role[0] in RECORD_ROLES and not rec.structured:
                    continue  # record times are read from structured records only, never free text
                grouped = not rec.group or words(key)[: len(rec.group)] == rec.group
                if grouped or not rec.strict:
                    yield _Field(i, key, value, *role, level, grouped)


def _same_line(fragment: Fragment, index: int, start: int, end: int) -> Iterator[_Field]:
    """Context the finding's own line carries: a `.pgpass` entry, a URL's user and host."""
    line = fragment.lines[index]
    if PurePosixPath(fragment.path).name in _PGPASS:
        cols = re.split(r"(?<!\\):", line.strip())
        if len(cols) == 5:  # hostname:port:database:username:password
            yield _Field(index, "hostname", cols[0], "host", 0)
            yield _Field(index, "database", cols[2], "database", 0)
            yield _Field(index, "username", cols[3], "user", 0)
    m = _URL_CREDS.search(line[:start])
    h = _URL_HOST.match(line[end:])
    if m and h:
        yield _Field(index, "url user", m.group(2), "user", 0)
        yield _Field(index, "url host", h.group(1) + (f":{h.group(2)}" if h.group(2) else ""), "host", 0)
        if h.group(3):
            yield _Field(index, "url database", h.group(3), "database", 0)


def _overlaps(value: str, secret: str) -> bool:
    v, s = value.lower(), secret.lower()
    return bool(s) and (s in v or (len(v) >= 3 and v in s))


Candidate = tuple[_Field, str]  # a field and its value as shown


def _narrow(found: list[Candidate], index: int) -> list[Candidate]:
    """The fields that are this credential's: its service's when it names one (`sshHost` for
    `sshPassword`), the holding object's nearest host only when the record has none, and one
    database, the nearest (Robomongo's `databaseName` beside the connection's `defaultDatabase`)."""
    if any(f.grouped and not f.level and f.role in ACCOUNT_ROLES for f, _ in found):
        found = [(f, v) for f, v in found if f.grouped or f.role not in ACCOUNT_ROLES]
    parent = [c for c in found if c[0].level]
    found = [c for c in found if not c[0].level]
    if parent and not any(f.role == "host" for f, _ in found):
        found.append(min(parent, key=lambda c: (not c[0].grouped, abs(c[0].at - index))))
    databases = [c for c in found if c[0].role == "database"]
    if len(databases) > 1:
        nearest = min(databases, key=lambda c: (abs(c[0].at - index), c[0].rank))
        found = [c for c in found if c[0].role != "database" or c is nearest]
    return found


def _identity(f: _Field, value: str) -> tuple[str, str]:
    """What makes two fields one: the value of an account field (FileZilla's <Account>
    repeating its <Host>, .esmtprc's identity repeating its username; a database or a path
    named like its user is kept), the name of a record time (three times, one value)."""
    if f.role in RECORD_ROLES:
        return f.role, f.name.lower()
    return ("account" if f.role in ("user", "host") else f.role), value.lower()


def find_context(fragment: Fragment, line: int, column: int, end_column: int, secret: str) -> tuple[ContextField, ...]:
    """The context of a finding at `line` (a line number of the fragment), columns 1-based:
    one field per value, the better-ranked name, then the nearer line."""
    index = bisect_left(fragment.line_numbers, line)
    if index >= len(fragment.line_numbers) or fragment.line_numbers[index] != line:
        return ()
    fields = [
        *_same_line(fragment, index, column - 1, end_column - 1),
        *_record_fields(fragment, index, column, secret),
    ]
    found = [(f, v) for f in fields if (v := clean_value(f.role, f.raw)) is not None and not _overlaps(v, secret)]
    best: dict[tuple[str, str], tuple[int, int, ContextField]] = {}
    for f, value in _narrow(found, index):
        same, score = _identity(f, value), (f.rank, abs(f.at - index))
        if same not in best or score < best[same][:2]:
            best[same] = (*score, ContextField(fragment.line_numbers[f.at], f.name, value, f.role))
    chosen: list[ContextField] = []
    for roles, cap in ((ACCOUNT_ROLES, MAX_FIELDS), (RECORD_ROLES, MAX_RECORD_FIELDS)):
        kept = [c for *_, c in best.values() if c.role in roles]
        chosen += sorted(kept, key=lambda c: (abs(c.line - line), c.line))[:cap]
    return tuple(sorted(chosen, key=lambda c: c.line))


def with_context(finding: Finding, fragment: Fragment) -> Finding:
    """The finding with its account context, when its record has any."""
    loc = finding.location
    fields = find_context(fragment, loc.line, loc.column, loc.end_column, finding.secret.reveal())
    return replace(finding, context=fields) if fields else finding
