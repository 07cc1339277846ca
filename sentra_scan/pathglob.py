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


class PathMatcher:
    """Matches a path against any of several globs, compiled into one expression."""

    def __init__(self, globs: Iterable[str]) -> None:
        parts = []
        for g in globs:
            while g.startswith("./"):
                g = g[2:]
            if "/" in g.rstrip("/"):
                parts.append(_translate(g.lstrip("/").rstrip("/")) + "(?:/.*)?")
            else:
                parts.append("(?:.*/)?" + _translate(g.rstrip("/")) + "(?:/.*)?")
        self._re = re.compile("|".join(f"(?:{p})" for p in parts)) if parts else None

    def __bool__(self) -> bool:
        return self._re is not None

    def matches(self, path: str) -> bool:
        return self._re is not None and self._re.fullmatch(path) is not None
