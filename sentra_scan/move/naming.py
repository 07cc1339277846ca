"""The name a moved secret gets: the variable it was assigned to (or the rule's `env`
name), upper case, under the name scheme (`dev/{name}`), with a suffix when taken."""

from __future__ import annotations

import re

from sentra_scan.model import Finding
from sentra_scan.move.rewrite import MoveError
from sentra_scan.store import Store, check_path

_GENERIC = {"key", "api_key", "apikey", "secret", "secret_key", "token", "access_token", "auth_token", "auth"}
_GENERIC |= {"password", "passwd", "pwd", "pass", "value", "val", "credential", "credentials", "private_key"}
_ASSIGN = (
    re.compile(r"(?<![\w.$@-])(?P<name>[A-Za-z_]\w*)\s*:\s*[\w\[\], .|]+?\s*=\s*$"),  # annotated: name: str =
    # name = / name: / "name": / name := / :name => ; not the last of a tuple (a, b = ...)
    re.compile(
        r"(?<![\w.$@-])(?<!,)(?<!, )(?P<name>[A-Za-z_@$][\w.$-]*)[\"'`]?\s*\]?\s*(?::=|=>|\?\?=|\|\|=|[:=])\s*$"
    ),
    re.compile(r"^\s*(?:ENV|ARG|export|set|setenv)\s+(?P<name>[A-Za-z_]\w*)\s+$"),
)


def env_name(text: str) -> str:
    """An environment-variable name: camelCase split, upper case, [A-Z0-9_] only."""
    text = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", text)
    text = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", text)
    name = re.sub(r"[^A-Za-z0-9]+", "_", text).strip("_").upper()
    return f"SECRET_{name}" if name[:1].isdigit() else name


def assigned_name(before: str) -> str | None:
    """The variable (or key) the literal that starts after `before` is assigned to."""
    for pattern in _ASSIGN:
        m = pattern.search(before)
        if m:
            break
    else:
        return None
    parts = [p for p in m.group("name").lstrip("@$").split(".") if p]
    while len(parts) > 1 and parts[0] in ("self", "this", "cls"):
        parts.pop(0)
    if not parts:
        return None
    if len(parts) > 1 and env_name(parts[-1]).lower() in _GENERIC:
        return env_name(f"{parts[-2]}_{parts[-1]}")
    return env_name(parts[-1]) or None


def suggest_name(finding: Finding, before: str) -> str:
    """The variable it was assigned to, unless that is a bare generic word (`key`,
    `token`): then the rule's `env` name. SECRET when there is neither."""
    name = assigned_name(before)
    if name and (name.lower() not in _GENERIC or not finding.env_name):
        return name
    return finding.env_name or name or "SECRET"


def entry_path(scheme: str, name: str) -> str:
    """`dev/{name}` → `dev/STRIPE_KEY`; the last segment must be a variable name."""
    if "{name}" not in scheme:
        raise MoveError(f"name scheme {scheme!r} has no {{name}}", hint="e.g. --name-scheme 'dev/{name}'")
    path = check_path(scheme.replace("{name}", name))
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", path.rsplit("/", 1)[-1]):
        raise MoveError(f"name scheme {scheme!r}: the last segment must be a variable name ([A-Za-z0-9_])")
    return path


def choose_entry(store: Store, scheme: str, name: str, value: str) -> str:
    """The entry path for `value`: the suggested one, or the same value's existing entry,
    or the name with a suffix (_2, _3, …) when the name holds another value."""
    path = entry_path(scheme, name)
    n = 1
    while path in store.names() and store.get(path) != value:
        n += 1
        path = entry_path(scheme, f"{name}_{n}")
    return path
