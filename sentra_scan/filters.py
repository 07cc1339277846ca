"""Filters, in stages: paths before any content is read; then cheap per-secret checks
(rule allow patterns, placeholders, config regexes, inline markers); fingerprints last.

Each filter that drops a candidate says why, so suppressed findings can be listed.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from typing import TYPE_CHECKING

from sentra_scan.model import Candidate, Finding, Severity
from sentra_scan.pathglob import PathMatcher
from sentra_scan.placeholders import EXAMPLE_PATHS, TEMPLATE, WORD, Kind, name_before, placeholder_kind
from sentra_scan.placeholders import SHORT_SECRET as SHORT_SECRET
from sentra_scan.placeholders import is_placeholder as is_placeholder
from sentra_scan.ruleset import Rule, RuleSet
from sentra_scan.validators import CHECKSUMS

if TYPE_CHECKING:
    import regex

    from sentra_scan.baseline import Baseline
    from sentra_scan.config import Config

INLINE_MARKER = re.compile(r"sentra:allow(?:[ \t]+([a-z0-9][a-z0-9-]*(?:[ \t]*,[ \t]*[a-z0-9][a-z0-9-]*)*))?")
# What a finding says when its value is a placeholder word that the rule keeps (see
# `Rule.placeholders`): at severity low, or at the rule's own in a credential file.
PLACEHOLDER_NOTES = {
    "lower": "value looks like a placeholder (severity lowered)",
    "templates-only": "value looks like a placeholder; in a credential file a default or weak password is a credential",
}


# Values with the shape of something that is not a secret. The shapes below are common as
# values of secret-named keys, so they are dropped for generic rules only: a specific rule
# knows its format (a Heroku key is a UUID, a legacy GitHub token is 40 hex).
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_GIT_SHA = re.compile(r"^[0-9a-f]{40}$")
_HEX_COLOUR = re.compile(r"^#(?:[0-9a-fA-F]{3,4}|[0-9a-fA-F]{6}|[0-9a-fA-F]{8})$")
# Spans that hold no secret, whatever rule matched inside them: a lock file's or a <script>
# tag's subresource-integrity hash, an image, font or media inlined as a base64 data: URI.
_INTEGRITY = re.compile(r"(?<![A-Za-z0-9])sha(?:1|256|384|512)-[A-Za-z0-9+/]{20,}={0,2}")
_DATA_URI = re.compile(r"data:(?:image|font|audio|video)/[\w.+-]+(?:;[\w.+-]+=[\w.+-]+)*;base64,[A-Za-z0-9+/]+={0,2}")
# Minified or generated code: past this length a line is not something a person typed, and
# only rules that know a format (not generic: name = value) are trusted there.
LONG_LINE = 1000


def shape_reason(value: str, generic: bool) -> str | None:
    """Why a value is not a secret by its shape alone, or None."""
    if not generic:
        return None
    if _UUID.match(value):
        return "UUID"
    if _GIT_SHA.match(value):
        return "git SHA"
    if _HEX_COLOUR.match(value):
        return "hex colour"
    return None


def span_reason(line: str, start: int, end: int, generic: bool) -> str | None:
    """Why the text at line[start:end] (0-based) is no secret by what surrounds it, or None."""
    if "sha" in line:
        for m in _INTEGRITY.finditer(line):
            if m.start() <= start and end <= m.end():
                return "integrity hash"
    if "base64," in line:
        for m in _DATA_URI.finditer(line):
            if m.start() <= start and end <= m.end():
                return "base64 data: URI"
    if generic and len(line) > LONG_LINE:
        return "long line (minified code)"
    return None


def fingerprint(rule_id: str, secret: str, salt: str = "") -> str:
    """Salted hash of the rule and the secret: stable when code moves, never the value."""
    key = b"sentra-fingerprint-v1\0" + salt.encode()
    return hmac.new(key, f"{rule_id}\0{secret}".encode(), hashlib.sha256).hexdigest()[:32]


def inline_allows(line: str, rule_id: str) -> bool:
    for m in INLINE_MARKER.finditer(line):
        ids = m.group(1)
        if ids is None or rule_id in {s.strip() for s in ids.split(",")}:
            return True
    return False


def foreign_marker(line: str, markers: tuple[str, ...]) -> str | None:
    """Other tools' allow comments, honoured when the config lists them."""
    from sentra_scan.config import MARKERS

    for name in markers:
        if name != "sentra" and MARKERS[name] in line:
            return MARKERS[name]
    return None


class FilterChain:
    def __init__(self, ruleset: RuleSet, config: Config) -> None:
        self.ruleset = ruleset
        self.config = config
        self._index = {r.id: i for i, r in enumerate(ruleset.rules)}
        self._paths = PathMatcher(config.allow_paths)
        self._regexes: list[regex.Pattern[str]] | None = None
        self._test_paths = PathMatcher(config.test_paths)
        self.baseline = _load_baseline(config)

    def path_allowed(self, path: str) -> bool:
        """Stage one: a path the config allows is never read."""
        return self._paths.matches(path)

    def _config_regexes(self) -> list[regex.Pattern[str]]:
        if self._regexes is None:
            import regex

            self._regexes = [regex.compile(p) for p in self.config.allow_regexes]
        return self._regexes

    def why_suppressed(self, cand: Candidate, fp: str) -> str | None:
        """The reason a candidate is dropped, or None to keep it."""
        value = cand.secret.reveal()
        i = self._index[cand.rule_id]
        for pat in self.ruleset.allow_patterns(i):
            if pat.search(value):
                return f"rule allow pattern {pat.pattern!r}"
        rule = self.ruleset.rules[i]
        kind = self._placeholder(cand, rule)
        if kind == TEMPLATE or (kind == WORD and not self._keeps_words(rule, cand.location.path)):
            return "placeholder"
        reason = shape_reason(value, rule.generic)
        if reason is None:
            loc = cand.location
            reason = span_reason(cand.line_text, loc.column - 1, loc.end_column - 1, rule.generic)
        if reason is not None:
            return reason
        for pat in self._config_regexes():
            if pat.search(value):
                return f"allow.regexes {pat.pattern!r}"
        if "sentra" in self.config.inline_markers and inline_allows(cand.line_text, cand.rule_id):
            return "inline sentra:allow"
        marker = foreign_marker(cand.line_text, self.config.inline_markers)
        if marker:
            return f"inline {marker}"
        if fp in self.config.allow_fingerprints:
            return "allow.fingerprints"
        if self.baseline is not None:
            entry = self.baseline.match(fp)
            if entry is not None:
                return "baseline" + (f" ({entry.reason})" if entry.reason else "")
        return None

    @staticmethod
    def _placeholder(cand: Candidate, rule: Rule) -> Kind | None:
        """What kind of placeholder the value is, if any (never for a checksummed token:
        whatever its random part spells, it was minted)."""
        if rule.validator in CHECKSUMS:
            return None
        value = cand.secret.reveal()
        name = name_before(cand.match_text, value) if rule.placeholders != "drop" else ""
        return placeholder_kind(value, name)

    @staticmethod
    def _keeps_words(rule: Rule, path: str) -> bool:
        """A rule that keeps placeholder words keeps them outside documentation and examples."""
        return rule.placeholders != "drop" and not EXAMPLE_PATHS.matches(path)

    def to_finding(self, cand: Candidate) -> Finding:
        rule = self.ruleset.rules[self._index[cand.rule_id]]
        fp = fingerprint(rule.id, cand.secret.reveal(), self.config.fingerprint_salt)
        reason = self.why_suppressed(cand, fp)
        env = rule.env or "an environment variable"
        hint = rule.hint or (
            f"move it to {env} or the Sentra store; if it is not a secret, add 'sentra:allow' to the line"
        )
        severity = rule.severity
        note = None
        if reason is None and rule.placeholders != "drop" and self._placeholder(cand, rule) == WORD:
            note = PLACEHOLDER_NOTES[rule.placeholders]
            if rule.placeholders == "lower":
                severity = Severity.LOW
            hint = f"{note}; {hint}"
        if self._test_paths.matches(cand.location.path) and severity > Severity.LOW:
            severity = Severity(severity - 1)  # a test fixture: lower, never hidden
            hint = "in a test path (severity lowered); " + hint
        if cand.encoding:
            hint = f"found {cand.encoding}-encoded; " + hint
        return Finding(
            rule_id=rule.id,
            description=rule.description,
            severity=severity,
            location=cand.location,
            fingerprint=fp,
            secret=cand.secret,
            line_text=cand.line_text,
            hint=hint,
            env_name=rule.env,
            suppressed_by=reason,
            encoding=cand.encoding,
            note=note,
        )


def _load_baseline(config: Config) -> Baseline | None:
    """The configured baseline, or `.sentra-baseline` beside the config when present."""
    from pathlib import Path

    from sentra_scan.baseline import DEFAULT_NAME, load

    root = Path(config.root) if config.root else None
    if config.baseline:
        path = Path(config.baseline)
        return load(path if path.is_absolute() or root is None else root / path)
    if root is not None and (root / DEFAULT_NAME).is_file():
        return load(root / DEFAULT_NAME)
    return None
