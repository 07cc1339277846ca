"""Migration from other tools: a gitleaks config to `.sentra.yaml`, a detect-secrets
baseline to a Sentra baseline.

gitleaks rules name their secret by group number (`secretGroup`); Sentra names it
`(?P<secret>...)`, so the group is renamed in the pattern. detect-secrets baselines hold
SHA-1 hashes of secrets; they are matched against what a scan finds now, and the matching
findings' fingerprints make the Sentra baseline (no secret is ever written).
"""

from __future__ import annotations

import hashlib
import json
import re
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sentra_scan.errors import ConfigError
from sentra_scan.model import Finding

_LITERAL = re.compile(r"[A-Za-z0-9_\-]{3,}")


def _capturing_groups(pattern: str) -> list[int]:
    """Offsets of the '(' of each capturing group, in order."""
    out = []
    i = 0
    in_class = False
    while i < len(pattern):
        c = pattern[i]
        if c == "\\":
            i += 2
            continue
        if in_class:
            in_class = c != "]"
        elif c == "[":
            in_class = True
            if pattern.startswith("[]", i) or pattern.startswith("[^]", i):
                i += 2 if pattern[i + 1] == "]" else 3
                continue
        elif c == "(" and (
            not pattern.startswith("(?", i)
            or (pattern.startswith(("(?P<", "(?<"), i) and not pattern.startswith(("(?<=", "(?<!"), i))
        ):
            out.append(i)
        i += 1
    return out


def secret_pattern(regex_text: str, group: int) -> str:
    """The pattern with group `group` (0: the whole match) named `secret`."""
    groups = _capturing_groups(regex_text)
    if group == 0 or not groups:
        return f"(?P<secret>{regex_text})"
    if group > len(groups):
        raise ValueError(f"secretGroup {group} but the pattern has {len(groups)} groups")
    pos = groups[group - 1]
    if regex_text.startswith("(?P<", pos) or regex_text.startswith("(?<", pos):
        close = regex_text.index(">", pos)
        return regex_text[:pos] + "(?P<secret>" + regex_text[close + 1 :]
    return regex_text[:pos] + "(?P<secret>" + regex_text[pos + 1 :]


def _keywords(rule: dict[str, Any], pattern: str) -> list[str]:
    kws = [k for k in rule.get("keywords", []) if isinstance(k, str) and k]
    if kws:
        return kws
    literals = sorted(_LITERAL.findall(re.sub(r"\\.", " ", pattern)), key=len, reverse=True)
    return literals[:1]


@dataclass
class GitleaksImport:
    config: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def import_gitleaks(path: Path) -> GitleaksImport:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read gitleaks config: {exc}", source=str(path)) from None
    out = GitleaksImport()
    rules: list[dict[str, Any]] = []
    allow_paths: list[str] = []
    allow_regexes: list[str] = []
    for i, rule in enumerate(data.get("rules", [])):
        rid = re.sub(r"[^a-z0-9-]+", "-", str(rule.get("id", f"rule-{i}")).lower()).strip("-") or f"rule-{i}"
        regex_text = rule.get("regex")
        if not isinstance(regex_text, str):
            out.warnings.append(f"rule {rid}: no regex (path-only rules are not supported); skipped")
            continue
        try:
            pattern = secret_pattern(regex_text, int(rule.get("secretGroup", 0) or 0))
        except ValueError as exc:
            out.warnings.append(f"rule {rid}: {exc}; skipped")
            continue
        keywords = _keywords(rule, regex_text)
        if not keywords:
            out.warnings.append(f"rule {rid}: no keywords and no literal text to derive one; skipped")
            continue
        new: dict[str, Any] = {
            "id": f"gitleaks-{rid}",
            "description": str(rule.get("description") or rid),
            "severity": "high",
            "keywords": [k.lower() for k in keywords],
            "pattern": pattern,
        }
        if rule.get("entropy"):
            new["entropy"] = float(rule["entropy"])
        if isinstance(rule.get("path"), str):
            out.warnings.append(f"rule {rid}: path regex {rule['path']!r} not converted (Sentra uses globs)")
        allows: list[str] = []
        for allow in [rule.get("allowlist") or {}, *(rule.get("allowlists") or [])]:
            allows += [r for r in allow.get("regexes", []) if isinstance(r, str)]
            allows += [re.escape(w) for w in allow.get("stopwords", []) if isinstance(w, str)]
        if allows:
            new["allow"] = allows
        rules.append(new)
    for allow in [data.get("allowlist") or {}, *(data.get("allowlists") or [])]:
        allow_regexes += [r for r in allow.get("regexes", []) if isinstance(r, str)]
        allow_regexes += [re.escape(w) for w in allow.get("stopwords", []) if isinstance(w, str)]
        for p in allow.get("paths", []):
            out.warnings.append(f"allowlist path regex {p!r} not converted: add an equivalent glob to allow.paths")
    out.config = {"version": 1}
    if rules:
        out.config["rules"] = rules
    allowed: dict[str, list[str]] = {}
    if allow_paths:
        allowed["paths"] = allow_paths
    if allow_regexes:
        allowed["regexes"] = allow_regexes
    if allowed:
        out.config["allow"] = allowed
    return out


def detect_secrets_hashes(path: Path) -> set[str]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read detect-secrets baseline: {exc}", source=str(path)) from None
    hashes: set[str] = set()
    for entries in (data.get("results") or {}).values():
        for entry in entries:
            h = entry.get("hashed_secret")
            if isinstance(h, str) and entry.get("is_secret") is not True:
                hashes.add(h.lower())
    return hashes


def matching_findings(findings: Iterable[Finding], hashes: set[str]) -> list[Finding]:
    """Findings whose secret detect-secrets had accepted (its SHA-1 is in the baseline)."""
    out = []
    for f in findings:
        digest = hashlib.sha1(f.secret.reveal().encode("utf-8"), usedforsecurity=False).hexdigest()
        if digest in hashes:
            out.append(f)
    return out
