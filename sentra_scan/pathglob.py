"""Glob patterns over repository paths (posix, relative).

`*` and `?` stay within one path segment, `**` crosses segments, and a pattern without a
`/` matches the file's base name anywhere in the tree (as .gitignore does).
"""

from __future__ import annotations

import re
from collections.abc import Iterable


def _translate(glob: str) -> str:
    out = []
    i = 0
    while i < len(glob):
        c = glob[i]
        if glob.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
            continue
        if glob.startswith("**", i):
            out.append(".*")
            i += 2
            continue
        if c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        else:
            out.append(re.escape(c))
        i += 1
    return "".join(out)


def _normal(glob: str) -> str:
    while glob.startswith("./"):
        glob = glob[2:]
    return glob


def expression(glob: str) -> str:
    """The regular expression (for `fullmatch`) of one glob."""
    glob = _normal(glob)
    if "/" in glob.rstrip("/"):
        return _translate(glob.lstrip("/").rstrip("/")) + "(?:/.*)?"
    return "(?:.*/)?" + _translate(glob.rstrip("/")) + "(?:/.*)?"


class PathMatcher:
    """Matches a path against any of several globs. A glob without `/` matches when a segment
    of the path fits it: a plain name is looked up in a set, `*.ext` is a suffix test, and
    only the rest are compiled into one expression (compiling ~190 rule globs into a single
    expression took ~50 ms, on every history scan)."""

    def __init__(self, globs: Iterable[str]) -> None:
        names: set[str] = set()
        suffixes: set[str] = set()
        parts = []
        for g in globs:
            base = _normal(g).rstrip("/")
            if "/" in base:
                parts.append(expression(g))
            elif base and "*" not in base and "?" not in base:
                names.add(base)
            elif base.startswith("*") and len(base) > 1 and "*" not in base[1:] and "?" not in base[1:]:
                suffixes.add(base[1:])
            else:
                parts.append(expression(g))
        self._names = frozenset(names)
        self._suffixes = tuple(sorted(suffixes))
        self._re = re.compile("|".join(f"(?:{p})" for p in parts)) if parts else None

    def __bool__(self) -> bool:
        return bool(self._names or self._suffixes or self._re is not None)

    def matches(self, path: str) -> bool:
        if self._names or self._suffixes:
            segments = path.split("/")
            if not self._names.isdisjoint(segments):
                return True
            if self._suffixes and any(seg.endswith(self._suffixes) for seg in segments):
                return True
        return self._re is not None and self._re.fullmatch(path) is not None
