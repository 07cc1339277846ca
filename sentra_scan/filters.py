"""Filters, in stages: paths before any content is read; then cheap per-secret checks
(rule allow patterns, placeholders, config regexes, inline markers); fingerprints last.

Each filter that drops a candidate says why, so suppressed findings can be listed.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from typing import TYPE_CHECKING

from sentra_scan.model import Candidate, Finding
from sentra_scan.pathglob import PathMatcher
from sentra_scan.ruleset import RuleSet
from sentra_scan.validators import CHECKSUMS

if TYPE_CHECKING:
    import regex

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


class FilterChain:
    def __init__(self, ruleset: RuleSet, config: Config) -> None:
        self.ruleset = ruleset
        self.config = config
        self._index = {r.id: i for i, r in enumerate(ruleset.rules)}
        self._paths = PathMatcher(config.allow_paths)
        self._regexes: list[regex.Pattern[str]] | None = None

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
        if inline_allows(cand.line_text, cand.rule_id):
            return "inline sentra:allow"
        if fp in self.config.allow_fingerprints:
            return "allow.fingerprints"
        return None

    def to_finding(self, cand: Candidate) -> Finding:
        rule = self.ruleset.rules[self._index[cand.rule_id]]
        fp = fingerprint(rule.id, cand.secret.reveal(), self.config.fingerprint_salt)
        reason = self.why_suppressed(cand, fp)
        env = rule.env or "an environment variable"
        hint = f"move it to {env} or the Sentra store; if it is not a secret, add 'sentra:allow' to the line"
        return Finding(
            rule_id=rule.id,
            description=rule.description,
            severity=rule.severity,
            location=cand.location,
            fingerprint=fp,
            secret=cand.secret,
            line_text=cand.line_text,
            hint=hint,
            env_name=rule.env,
            suppressed_by=reason,
        )
