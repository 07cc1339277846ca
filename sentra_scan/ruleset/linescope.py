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

import functools
import importlib
import re
from typing import Any

# The standard library's regular-expression parser and its node types (Python 3.11+; no
# type stubs, hence Any).
_p: Any = importlib.import_module("re._parser")
_c: Any = importlib.import_module("re._constants")

_NL = 10
_NL_CATEGORIES = {_c.CATEGORY_SPACE, _c.CATEGORY_NOT_WORD, _c.CATEGORY_NOT_DIGIT, _c.CATEGORY_LINEBREAK}
_SAFE_CATEGORIES = {_c.CATEGORY_NOT_SPACE, _c.CATEGORY_WORD, _c.CATEGORY_DIGIT, _c.CATEGORY_NOT_LINEBREAK}


# `regex` syntax the standard library's parser would read as literal text (fuzzy matching,
# version flags): see _parse.
_REGEX_ONLY = re.compile(r"\{[^}]*[eids]\s*[<=]|\(\?V[01]|\(\?[a-zA-Z]*[rbef]")


@functools.lru_cache(maxsize=1024)
def _parse(pattern: str) -> Any:
    """The pattern's syntax tree, parsed once for every question asked of it; None when the
    standard library's parser cannot read it, or would read `regex`-only syntax as literal
    text (then every analysis here assumes the worst)."""
    if _REGEX_ONLY.search(pattern):
        return None
    try:
        return _p.parse(pattern)
    except Exception:  # any syntax the stdlib parser lacks
        return None


def single_line(pattern: str) -> bool:
    """True when no match of `pattern` can span a line break (nor depend on where the
    whole text begins or ends)."""
    parsed = _parse(pattern)
    return parsed is not None and not _can_cross(list(parsed), parsed.state.flags)


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


def holds_keyword(pattern: str, keywords: tuple[str, ...]) -> bool:
    """True when every match of `pattern` holds one of `keywords` (compared lower-cased, as
    the keyword prefilter compares them): a literal run of the pattern that no match can
    skip contains a keyword. With `single_line`, the line of every match then holds a
    keyword, so running the rule on the lines that hold one finds all it finds."""
    words = tuple(k.lower() for k in keywords if k)
    parsed = _parse(pattern)
    return bool(words) and parsed is not None and _sequence_holds(list(parsed), words)


_MAX_SPELLINGS = 64  # literal alternatives followed at once (`(?:password|pwd)`, `[Aa]`)


def _sequence_holds(items: list[tuple[Any, Any]], words: tuple[str, ...]) -> bool:
    # The literal text the match ends with here, in each way it can be spelt: when every
    # spelling holds a keyword, so does every match.
    spellings = {""}
    for op, av in items:
        literal = _spellings(op, av)
        if literal is None or len(spellings) * len(literal) > _MAX_SPELLINGS:
            if _element_holds(op, av, words):
                return True
            spellings = {""}
            continue
        spellings = {s + t for s in spellings for t in literal}
        if all(any(w in s for w in words) for s in spellings):
            return True
    return False


def _spellings(op: Any, av: Any) -> set[str] | None:
    """The lower-cased strings an element can match when they are few and literal."""
    if op is _c.LITERAL:
        return {chr(av).lower()}
    if op is _c.IN and all(o is _c.LITERAL for o, _a in av):
        return {chr(a).lower() for _o, a in av}
    if op is _c.SUBPATTERN:
        return _sequence_spellings(list(av[3]))
    if op is _c.BRANCH:
        out: set[str] = set()
        for branch in av[1]:
            spelt = _sequence_spellings(list(branch))
            if spelt is None:
                return None
            out |= spelt
        return out if len(out) <= _MAX_SPELLINGS else None
    return None


def _sequence_spellings(items: list[tuple[Any, Any]]) -> set[str] | None:
    out = {""}
    for op, av in items:
        literal = _spellings(op, av)
        if literal is None or len(out) * len(literal) > _MAX_SPELLINGS:
            return None
        out = {s + t for s in out for t in literal}
    return out


def _element_holds(op: Any, av: Any, words: tuple[str, ...]) -> bool:
    if op is _c.SUBPATTERN:
        return _sequence_holds(list(av[3]), words)
    if op is _c.ATOMIC_GROUP:
        return _sequence_holds(list(av), words)
    if op is _c.BRANCH:
        return all(_sequence_holds(list(branch), words) for branch in av[1])
    if op in (_c.MAX_REPEAT, _c.MIN_REPEAT, _c.POSSESSIVE_REPEAT):
        return bool(av[0] >= 1 and _sequence_holds(list(av[2]), words))
    return False


# Characters with no other case (ASCII punctuation and the space): a literal run of them must
# appear as written whatever the pattern's case flags.
_CASELESS = frozenset("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~ ")


def required_literals(pattern: str) -> tuple[str, ...]:
    """Runs of punctuation that every match of `pattern` contains as written (`://` and `@`
    for a URL with a password in it): a text, or a line, without one of them cannot hold a
    match, and the rule need not run there. Only what no match can skip counts (not inside
    alternatives, optional parts or lookarounds); anything unsure gives ()."""
    parsed = _parse(pattern)
    if parsed is None:
        return ()
    found: set[str] = set()
    _collect_required(list(parsed), found)
    # ":" says nothing once "://" is required.
    return tuple(sorted(r for r in found if not any(r != other and r in other for other in found)))


def _collect_required(items: list[tuple[Any, Any]], found: set[str]) -> None:
    run = ""
    for op, av in items:
        if op is _c.LITERAL and chr(av) in _CASELESS:
            run += chr(av)
            continue
        if run:
            found.add(run)
            run = ""
        if op is _c.SUBPATTERN:
            _collect_required(list(av[3]), found)
        elif op is _c.ATOMIC_GROUP:
            _collect_required(list(av), found)
        elif op in (_c.MAX_REPEAT, _c.MIN_REPEAT, _c.POSSESSIVE_REPEAT) and av[0] >= 1:
            _collect_required(list(av[2]), found)
    if run:
        found.add(run)
