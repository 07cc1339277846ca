"""The user's `.sentra.yaml`: extend, override or disable rules; allow paths, regexes,
fingerprints. Unknown keys are a warning here (an error in rule files)."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from sentra_scan import yamlcache
from sentra_scan.errors import ConfigError
from sentra_scan.ruleset import RuleSet
from sentra_scan.ruleset.schema import Rule, apply_override, parse_rule, validate_patterns

CONFIG_NAME = ".sentra.yaml"
CONFIG_TAG = "config-v1"
TOP_KEYS = frozenset(
    {
        "version",
        "rules",
        "disable",
        "override",
        "allow",
        "max-file-size",
        "regex-timeout",
        "fingerprint-salt",
        "default-rules",
        "baseline",
        "inline-markers",
        "test-paths",
        "decode-depth",
        "store",
        "environments",
        "default-env",
    }
)
DEFAULT_ENVIRONMENTS = {"dev": ("dev/",), "staging": ("staging/",), "prod": ("prod/",)}
MARKERS = {"sentra": "sentra:allow", "gitleaks": "gitleaks:allow", "detect-secrets": "pragma: allowlist secret"}
DEFAULT_TEST_PATHS = (
    "test/**",
    "tests/**",
    "**/test/**",
    "**/tests/**",
    "**/__tests__/**",
    "**/spec/**",
    "**/fixtures/**",
    "**/testdata/**",
    "*_test.go",
    "test_*.py",
    "*_test.py",
    "*.test.js",
    "*.test.ts",
    "*.spec.js",
    "*.spec.ts",
)
ALLOW_KEYS = frozenset({"paths", "regexes", "fingerprints"})
DEFAULT_MAX_FILE_SIZE = 2 * 1024 * 1024
DEFAULT_REGEX_TIMEOUT = 1.0
_UNITS = {"": 1, "B": 1, "KB": 1024, "K": 1024, "MB": 1024**2, "M": 1024**2, "GB": 1024**3, "G": 1024**3}


@dataclass(frozen=True)
class Config:
    extra_rules: tuple[Rule, ...] = ()
    disabled: frozenset[str] = frozenset()
    overrides: Mapping[str, Any] = field(default_factory=dict)
    allow_paths: tuple[str, ...] = ()
    allow_regexes: tuple[str, ...] = ()
    allow_fingerprints: frozenset[str] = frozenset()
    max_file_size: int = DEFAULT_MAX_FILE_SIZE
    regex_timeout: float = DEFAULT_REGEX_TIMEOUT
    fingerprint_salt: str = ""
    default_rules: bool = True
    source: str = ""
    warnings: tuple[str, ...] = ()
    baseline: str | None = None  # path relative to `root`
    inline_markers: tuple[str, ...] = ("sentra",)
    test_paths: tuple[str, ...] = DEFAULT_TEST_PATHS
    decode_depth: int = 2
    root: str = ""  # the directory holding the config (the repository's top)
    store: str | None = None  # path of secrets.enc relative to `root`
    environments: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: dict(DEFAULT_ENVIRONMENTS))
    default_env: str = "dev"

    def build_ruleset(self, rules_dir: Path | None = None) -> RuleSet:
        base = list(RuleSet.load(rules_dir).rules) if self.default_rules or rules_dir else []
        known = {r.id for r in base} | {r.id for r in self.extra_rules}
        for rid in sorted(self.disabled - known):
            raise ConfigError(f"unknown rule {rid!r}", source=self.source, key="disable")
        for rid in sorted(set(self.overrides) - known):
            raise ConfigError(f"unknown rule {rid!r}", source=self.source, key="override")
        extra_ids = {r.id for r in self.extra_rules}
        rules = [r for r in base if r.id not in extra_ids] + list(self.extra_rules)
        out = []
        for rule in rules:
            if rule.id in self.disabled:
                continue
            if rule.id in self.overrides:
                override = self.overrides[rule.id]
                rule = apply_override(rule, override, self.source)
                if "pattern" in override or "allow" in override:  # fail at load, not mid-scan
                    validate_patterns([rule])
            out.append(rule)
        return RuleSet(out)


def parse_size(value: Any, source: str) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    if isinstance(value, str):
        text = value.strip().upper().replace(" ", "")
        num = text.rstrip("KMGB")
        unit = text[len(num) :]
        if num.isdigit() and unit in _UNITS and int(num) > 0:
            return int(num) * _UNITS[unit]
    raise ConfigError(f"must be a size such as 2MB, got {value!r}", source=source, key="max-file-size")


def _str_list(value: Any, source: str, key: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ConfigError("must be a list of non-empty strings", source=source, key=key)
    return tuple(value)


def _parse(data: Any, source: str) -> Config:
    if data is None:
        return Config(source=source)
    if not isinstance(data, Mapping):
        raise ConfigError("must be a mapping", source=source)
    warnings = [f"{source}: unknown key {k!r} ignored" for k in sorted(set(data) - TOP_KEYS, key=str)]
    version = data.get("version", 1)
    if isinstance(version, bool) or version != 1:
        raise ConfigError(
            f"unsupported version {version!r} (this Sentra reads version 1)", source=source, key="version"
        )
    rules_raw = data.get("rules", [])
    if not isinstance(rules_raw, list):
        raise ConfigError("must be a list of rules", source=source, key="rules")
    extra = tuple(parse_rule(r, source, require_examples=False) for r in rules_raw)
    allow = data.get("allow", {}) or {}
    if not isinstance(allow, Mapping):
        raise ConfigError("must be a mapping with paths/regexes/fingerprints", source=source, key="allow")
    warnings += [f"{source}: unknown key 'allow.{k}' ignored" for k in sorted(set(allow) - ALLOW_KEYS, key=str)]
    overrides = data.get("override", {}) or {}
    if not isinstance(overrides, Mapping):
        raise ConfigError("must be a mapping of rule id to rule keys", source=source, key="override")
    timeout = data.get("regex-timeout", DEFAULT_REGEX_TIMEOUT)
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0:
        raise ConfigError("must be a positive number of seconds", source=source, key="regex-timeout")
    salt = data.get("fingerprint-salt", "")
    if not isinstance(salt, str):
        raise ConfigError("must be a string", source=source, key="fingerprint-salt")
    default_rules = data.get("default-rules", True)
    if not isinstance(default_rules, bool):
        raise ConfigError("must be true or false", source=source, key="default-rules")
    baseline = data.get("baseline")
    if baseline is not None and (not isinstance(baseline, str) or not baseline):
        raise ConfigError("must be a path", source=source, key="baseline")
    markers = _str_list(data.get("inline-markers", ["sentra"]), source, "inline-markers")
    for marker in markers:
        if marker not in MARKERS:
            raise ConfigError(
                f"unknown marker {marker!r} (known: {', '.join(MARKERS)})", source=source, key="inline-markers"
            )
    depth = data.get("decode-depth", 2)
    if isinstance(depth, bool) or not isinstance(depth, int) or not 0 <= depth <= 3:
        raise ConfigError("must be 0 (off) to 3", source=source, key="decode-depth")
    store = data.get("store")
    if store is not None and (not isinstance(store, str) or not store):
        raise ConfigError("must be a path", source=source, key="store")
    environments = _environments(data.get("environments"), source)
    default_env = data.get("default-env", "dev")
    if not isinstance(default_env, str) or default_env not in environments:
        raise ConfigError(
            f"must name one of the environments ({', '.join(environments)})", source=source, key="default-env"
        )
    return Config(
        store=store,
        environments=environments,
        default_env=default_env,
        baseline=baseline,
        inline_markers=markers,
        test_paths=_str_list(data.get("test-paths", list(DEFAULT_TEST_PATHS)), source, "test-paths"),
        decode_depth=depth,
        extra_rules=extra,
        disabled=frozenset(_str_list(data.get("disable", []), source, "disable")),
        overrides=dict(overrides),
        allow_paths=_str_list(allow.get("paths", []), source, "allow.paths"),
        allow_regexes=_str_list(allow.get("regexes", []), source, "allow.regexes"),
        allow_fingerprints=frozenset(_str_list(allow.get("fingerprints", []), source, "allow.fingerprints")),
        max_file_size=parse_size(data.get("max-file-size", DEFAULT_MAX_FILE_SIZE), source),
        regex_timeout=float(timeout),
        fingerprint_salt=salt,
        default_rules=default_rules,
        source=source,
        warnings=tuple(warnings),
    )


def _environments(value: Any, source: str) -> dict[str, tuple[str, ...]]:
    """`environments: {dev: [dev/], prod: [prod/]}`: which entry-path prefixes each may read."""
    if value is None:
        return dict(DEFAULT_ENVIRONMENTS)
    if not isinstance(value, Mapping) or not value:
        raise ConfigError("must map environment names to lists of path prefixes", source=source, key="environments")
    out: dict[str, tuple[str, ...]] = {}
    for name, prefixes in value.items():
        key = f"environments.{name}"
        items = _str_list(prefixes, source, key)
        for p in items:
            if not p.endswith("/"):
                raise ConfigError(f"prefix {p!r} must end with '/'", source=source, key=key)
        out[str(name)] = items
    return out


def _validate(data: Any, source: str) -> None:
    config = _parse(data, source)
    validate_patterns(list(config.extra_rules))
    import regex

    for i, pattern in enumerate(config.allow_regexes):
        try:
            regex.compile(pattern)
        except regex.error as exc:
            raise ConfigError(f"does not compile: {exc}", source=source, key=f"allow.regexes[{i}]") from None


def load_config(path: Path | None, *, warn: bool = True) -> Config:
    """Read `path` (a `.sentra.yaml`); a missing file gives the defaults."""
    if path is None or not path.is_file():
        return Config()
    source = path.name
    config = _parse(yamlcache.load(path, CONFIG_TAG, _validate, source=source), source)
    config = replace(config, root=str(path.parent))
    if warn:
        for w in config.warnings:
            print(f"warning: {w}", file=sys.stderr)
    return config
