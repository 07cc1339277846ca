"""Which patterns can only ever match inside one line.

A generic rule (`name = "value"`) runs on every fragment that holds one of its broad
keywords (pass, token, secret...), and its pattern is tried at every position of the
fragment: on a history, most of the detection time. When its pattern cannot match a line
break and its keyword is the name it matches, running it on the lines that hold a keyword
finds exactly what running it on the whole fragment finds, for a fraction of the work.

The check reads the pattern's syntax tree (the standard library's parser: rule patterns
are written for `regex`, whose syntax is a superset; a pattern it cannot parse is taken as
possibly multi-line). Anything that could consume a line feed, or anchors to the start or
end of the whole text, makes the pattern multi-line.
"""

from __future__ import annotations

import importlib
from typing import Any

# The standard library's regular-expression parser and its node types (Python 3.11+; no
# type stubs, hence Any).
_p: Any = importlib.import_module("re._parser")
_c: Any = importlib.import_module("re._constants")

_NL = 10
_NL_CATEGORIES = {_c.CATEGORY_SPACE, _c.CATEGORY_NOT_WORD, _c.CATEGORY_NOT_DIGIT, _c.CATEGORY_LINEBREAK}
_SAFE_CATEGORIES = {_c.CATEGORY_NOT_SPACE, _c.CATEGORY_WORD, _c.CATEGORY_DIGIT, _c.CATEGORY_NOT_LINEBREAK}


def single_line(pattern: str) -> bool:
    """True when no match of `pattern` can span a line break (nor depend on where the
    whole text begins or ends)."""
    try:
        parsed = _p.parse(pattern)
    except Exception:  # any syntax the stdlib parser lacks: assume the worst
        return False
    return not _can_cross(list(parsed), parsed.state.flags)


def _class_has_newline(items: list[tuple[Any, Any]]) -> bool:
    negate = False
    hit = False
    for op, av in items:
        if op is _c.NEGATE:
            negate = True
        elif op is _c.LITERAL:
            hit = hit or av == _NL
        elif op is _c.RANGE:
            hit = hit or av[0] <= _NL <= av[1]
        elif op is _c.CATEGORY:
            if av in _NL_CATEGORIES:
                hit = True
            elif av not in _SAFE_CATEGORIES:
                return True
        else:
            return True  # unknown set member
    return hit != negate


def _can_cross(items: list[tuple[Any, Any]], flags: int) -> bool:
    for op, av in items:
        if op is _c.LITERAL:
            if av == _NL:
                return True
        elif op is _c.NOT_LITERAL:
            if av != _NL:
                return True
        elif op is _c.ANY:
            if flags & _c.SRE_FLAG_DOTALL:
                return True
        elif op is _c.IN:
            if _class_has_newline(av):
                return True
        elif op in (_c.MAX_REPEAT, _c.MIN_REPEAT, _c.POSSESSIVE_REPEAT):
            if _can_cross(list(av[2]), flags):
                return True
        elif op is _c.SUBPATTERN:
            _group, add, delete, sub = av
            if _can_cross(list(sub), (flags | add) & ~delete):
                return True
        elif op is _c.ATOMIC_GROUP:
            if _can_cross(list(av), flags):
                return True
        elif op is _c.BRANCH:
            if any(_can_cross(list(branch), flags) for branch in av[1]):
                return True
        elif op in (_c.ASSERT, _c.ASSERT_NOT):
            # At a line's edge a lookaround sees a line feed in the whole text and nothing
            # in the line alone: the same answer unless it can match a line feed.
            if _can_cross(list(av[1]), flags):
                return True
        elif op is _c.GROUPREF:
            continue  # repeats a group already checked
        elif op is _c.AT:
            if av in (_c.AT_BEGINNING_STRING, _c.AT_END_STRING):
                return True
            if av in (_c.AT_BEGINNING, _c.AT_END) and not flags & _c.SRE_FLAG_MULTILINE:
                return True
        else:
            return True  # conditionals, categories outside a set, anything new
    return False
