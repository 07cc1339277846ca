"""Placeholder values, in two kinds.

A *template* says that no credential is there: a reference to be substituted (`${X}`,
`$X`, `{{ x }}`, `%(x)s`, `<x>`), a mask (`xxxx`, `***`, `...`), an instruction
(`YOUR_API_KEY`, `replace-me`, `TODO`), no value (`null`, `none`), or a provider's
documented example key. It is never a finding.

A placeholder *word* is what people type where a password goes: `example`, `dummy`,
`changeme`, `sample`, `admin`, `password`, a value repeating its key's name
(`IRC_PASS=irc_pass`). In code and documentation it is an example; in a credential file
(`.pgpass`, `.netrc`, FileZilla's sitemanager) it is a default or weak password that
works. A rule says which: see `Rule.placeholders`.
"""

from __future__ import annotations

import re
from typing import Literal

from sentra_scan.pathglob import PathMatcher

Kind = Literal["template", "word"]
TEMPLATE: Kind = "template"
WORD: Kind = "word"

# In a short value (a typed-in password, an API key) the words below count anywhere and in
# any case: "dummy-pass", "EXAMPLEKEY12345678", "sk_test_xxxx". In a long value (a random
# token, a private key body) a word that random characters happen to spell is chance, not
# intent (1-2% of PEM private keys spell "todo" or "fake" in some mix of cases): there a word
# counts as a whole word between non-alphanumerics ("-----BEGIN FAKE KEY-----", "my_todo"), or,
# for the longer words, written all in one case ("...bPxRfiCYzEXAMPLEKEY").
SHORT_SECRET = 40
_MARKERS = (  # instructions and marks: "no value here"
    r"placeholder|redacted|your[_-]?(?:api[_-]?)?(?:key|token|secret|password|pass)|replace[_-]?(?:me|with|this)|"
    r"insert[_-]?(?:your|key|token|here)|notreal|not[_-]a[_-]real|fixme"
)
_WEAK = r"changeme|change[_-]?me|dummy|example|sample"  # stand-ins, and default passwords
_MASK = re.compile(r"x{4,}|\*{3,}|\.{3,}|…", re.IGNORECASE)
_MASK_LONG = re.compile(r"x{8,}|X{8,}|\*{3,}|…")
_MARKER_SHORT = re.compile(_MARKERS + "|todo", re.IGNORECASE)
_WEAK_SHORT = re.compile(_WEAK + "|fake", re.IGNORECASE)


def _long_words(words: str, whole: str) -> re.Pattern[str]:
    return re.compile("|".join((words, words.upper(), rf"(?i:(?<![A-Za-z0-9])(?:{whole})(?![A-Za-z0-9]))")))


_MARKER_LONG = _long_words(_MARKERS, _MARKERS + "|todo")
_WEAK_LONG = _long_words(_WEAK, _WEAK + "|fake")
_ELLIPSIS = re.compile(r"\.{3,}")  # "eyJhbGciOi..." -- but crypt(3) hashes use "." as a digit
_NO_VALUE = re.compile(r"^(?:none|null|nil|undefined|true|false)$", re.IGNORECASE)
_WEAK_VALUES = re.compile(r"^(?:test|secret|password|passwd|token|admin|root)$", re.IGNORECASE)
# Values quoted by providers' own documentation as examples (whatever their length).
DOCUMENTED_EXAMPLES = frozenset(
    {
        "AKIAIOSFODNN7EXAMPLE",  # AWS access key id
        "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",  # AWS secret access key
        "je7MtGbClwBF/2Zp9Utk/h3yCo8nvbEXAMPLEKEY",  # AWS secret access key (second example)
    }
)
_TEMPLATE = re.compile(
    r"^(?:<[^<>]*>|\$\{[^}]*\}|\$\([^)]*\)|\{\{.*\}\}|\{%.*%\}|%\([^)]*\)[sd]|\$[A-Za-z_][A-Za-z0-9_]*|"
    r"%[A-Za-z_][A-Za-z0-9_]*%|\[[A-Za-z_ ]+\])$"
)
# Documentation and example files: there a placeholder word is an example, whatever the
# rule (`.env.example`, `wp-config-sample.php`, `docs/`, a README).
EXAMPLE_PATHS = PathMatcher(
    (
        "*example*",
        "*sample*",
        "*.dist",
        "*.template",
        "*.tmpl",
        "*.tpl",
        "*.md",
        "*.markdown",
        "*.rst",
        "*.adoc",
        "doc",
        "docs",
        "documentation",
    )
)
_NOT_ALNUM = re.compile(r"[^a-z0-9]")


def placeholder_kind(secret: str, name: str = "") -> Kind | None:
    """Whether a value is a template, a placeholder word, or neither (None). `name`, the
    text before the value (the key it is assigned to), makes a value that repeats it a word."""
    if len(set(secret)) == 1 or secret in DOCUMENTED_EXAMPLES:  # a mask (xxx, ***), a known example
        return TEMPLATE
    if _TEMPLATE.match(secret) or _NO_VALUE.match(secret):
        return TEMPLATE
    if len(secret) <= SHORT_SECRET:
        if _MASK.search(secret) or _MARKER_SHORT.search(secret):
            return TEMPLATE
        if _WEAK_VALUES.match(secret) or _WEAK_SHORT.search(secret) or _repeats_name(secret, name):
            return WORD
        return WORD if len(set(secret)) <= 3 else None  # too few characters to be random: "root", "1212"
    if _MASK_LONG.search(secret) or _MARKER_LONG.search(secret):
        return TEMPLATE
    if not secret.startswith("$") and _ELLIPSIS.search(secret):
        return TEMPLATE
    return WORD if _WEAK_LONG.search(secret) or len(set(secret)) <= 3 else None


def is_placeholder(secret: str) -> bool:
    """Template references, masked values and well-known placeholder words."""
    return placeholder_kind(secret) is not None


def _repeats_name(secret: str, name: str) -> bool:
    value = _NOT_ALNUM.sub("", secret.lower())
    return len(value) >= 4 and value in _NOT_ALNUM.sub("", name.lower())


def name_before(match_text: str, secret: str) -> str:
    """The text of a match before its secret: the key the value is assigned to."""
    at = match_text.rfind(secret)
    return match_text[:at] if at > 0 else ""
