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
from sentra_scan.ruleset import RuleSet
from sentra_scan.validators import CHECKSUMS

if TYPE_CHECKING:
    import regex

    from sentra_scan.baseline import Baseline
    from sentra_scan.config import Config

INLINE_MARKER = re.compile(r"sentra:allow(?:[ \t]+([a-z0-9][a-z0-9-]*(?:[ \t]*,[ \t]*[a-z0-9][a-z0-9-]*)*))?")
_PLACEHOLDER_WORDS = re.compile(
    r"x{4,}|\*{3,}|\.{3,}|changeme|change[_-]?me|placeholder|dummy|redacted|example|"
    r"your[_-]?(?:api[_-]?)?(?:key|token|secret|password|pass)|replace[_-]?(?:me|with|this)|"
    r"insert[_-]?(?:your|key|token|here)|notreal|not[_-]a[_-]real|fake|todo|fixme|"
    r"^(?:test|secret|password|passwd|token|none|null|undefined|true|false|admin|root)$",
    re.IGNORECASE,
)
_TEMPLATE = re.compile(
    r"^(?:<[^<>]*>|\$\{[^}]*\}|\$\([^)]*\)|\{\{.*\}\}|\{%.*%\}|%\([^)]*\)[sd]|\$[A-Za-z_][A-Za-z0-9_]*|"
    r"%[A-Za-z_][A-Za-z0-9_]*%|\[[A-Za-z_ ]+\])$"
)


def is_placeholder(secret: str) -> bool:
    """Template references, masked values and well-known placeholder words."""
    if len(set(secret)) <= 3:
        return True
    if _TEMPLATE.match(secret):
        return True
    return _PLACEHOLDER_WORDS.search(secret) is not None


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
        if self.ruleset.rules[i].validator not in CHECKSUMS and is_placeholder(value):
            return "placeholder"
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

    def to_finding(self, cand: Candidate) -> Finding:
        rule = self.ruleset.rules[self._index[cand.rule_id]]
        fp = fingerprint(rule.id, cand.secret.reveal(), self.config.fingerprint_salt)
        reason = self.why_suppressed(cand, fp)
        env = rule.env or "an environment variable"
        hint = rule.hint or (
            f"move it to {env} or the Sentra store; if it is not a secret, add 'sentra:allow' to the line"
        )
        severity = rule.severity
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
