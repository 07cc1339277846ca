"""Rule data: parse and validate raw YAML mappings into frozen `Rule` values.

A rule file is a mapping with a `rules` list. Every error names the file, the rule and the
key. Unknown keys are errors in rule files.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sentra_scan.errors import ConfigError
from sentra_scan.model import Severity

RULE_KEYS = frozenset(
    {
        "id",
        "description",
        "severity",
        "keywords",
        "pattern",
        "entropy",
        "validator",
        "paths",
        "allow",
        "env",
        "examples",
        "generic",
        "hint",
        "placeholders",
    }
)
# What a placeholder value does to a match (see sentra_scan.placeholders): "drop" (templates
# and placeholder words drop it); "templates-only" (a placeholder word is reported: in a
# credential file a default or weak password is a credential); "lower" (a placeholder word
# is reported at severity low, with a note). Outside documentation and example files only.
PLACEHOLDER_MODES = ("drop", "templates-only", "lower")
_ID_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-")


@dataclass(frozen=True)
class Example:
    text: str  # a template (see sentra_scan.ruleset.examples)
    path: str = "example.txt"


@dataclass(frozen=True)
class Examples:
    match: tuple[Example, ...] = ()
    no_match: tuple[Example, ...] = ()


@dataclass(frozen=True)
class Rule:
    id: str
    description: str
    severity: Severity
    keywords: tuple[str, ...]  # lower-cased
    pattern: str
    entropy: float | None = None
    validator: str | None = None
    paths_include: tuple[str, ...] = ()
    paths_exclude: tuple[str, ...] = ()
    allow: tuple[str, ...] = ()
    env: str | None = None
    examples: Examples = Examples()
    generic: bool = False
    hint: str | None = None  # replaces the default "move it to ..." advice
    placeholders: str = "drop"  # one of PLACEHOLDER_MODES
    source: str = ""


def _str_list(value: Any, source: str, rule: str, key: str) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ConfigError("must be a list of non-empty strings", source=source, rule=rule, key=key)
    return tuple(value)


def _paths(value: Any, source: str, rule: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    if not isinstance(value, Mapping):
        raise ConfigError("must be a mapping with include/exclude", source=source, rule=rule, key="paths")
    unknown = set(value) - {"include", "exclude"}
    if unknown:
        raise ConfigError(f"unknown key {sorted(unknown)[0]!r}", source=source, rule=rule, key="paths")
    inc = _str_list(value.get("include", []), source, rule, "paths.include")
    exc = _str_list(value.get("exclude", []), source, rule, "paths.exclude")
    return inc, exc


def _examples(value: Any, source: str, rule: str) -> Examples:
    if not isinstance(value, Mapping):
        raise ConfigError("must be a mapping with match/no-match", source=source, rule=rule, key="examples")
    unknown = set(value) - {"match", "no-match"}
    if unknown:
        raise ConfigError(f"unknown key {sorted(unknown)[0]!r}", source=source, rule=rule, key="examples")
    return Examples(
        match=_example_list(value.get("match", []), source, rule, "examples.match"),
        no_match=_example_list(value.get("no-match", []), source, rule, "examples.no-match"),
    )


def _example_list(value: Any, source: str, rule: str, key: str) -> tuple[Example, ...]:
    """Each example is a template string, or a mapping {path: ..., text: ...}."""
    if not isinstance(value, list):
        raise ConfigError("must be a list", source=source, rule=rule, key=key)
    out = []
    for i, item in enumerate(value):
        if isinstance(item, str) and item:
            out.append(Example(item))
        elif isinstance(item, Mapping) and set(item) <= {"path", "text"} and isinstance(item.get("text"), str):
            path = item.get("path", "example.txt")
            if not isinstance(path, str) or not path:
                raise ConfigError("path must be a non-empty string", source=source, rule=rule, key=f"{key}[{i}]")
            out.append(Example(item["text"], path))
        else:
            raise ConfigError(
                "must be a template string or a mapping with 'text' and optional 'path'",
                source=source,
                rule=rule,
                key=f"{key}[{i}]",
            )
    return tuple(out)


def parse_rule(raw: Any, source: str, *, require_examples: bool = True) -> Rule:
    """Check one raw rule mapping's shape and turn it into a `Rule`.

    Patterns are checked textually for a `secret` group here; compiling happens in
    `validate_patterns` (once, when the rule cache is built) and lazily at scan time.
    """
    if not isinstance(raw, Mapping):
        raise ConfigError("each rule must be a mapping", source=source, key="rules")
    rid = raw.get("id")
    if not isinstance(rid, str) or not rid or not set(rid) <= _ID_CHARS or rid[0] == "-":
        raise ConfigError(f"id must be kebab-case, got {rid!r}", source=source, key="id")
    unknown = set(raw) - RULE_KEYS
    if unknown:
        raise ConfigError("unknown key", source=source, rule=rid, key=sorted(unknown)[0])
    for key in ("description", "pattern", "keywords"):
        if key not in raw:
            raise ConfigError("missing", source=source, rule=rid, key=key)
    desc = raw["description"]
    if not isinstance(desc, str) or not desc:
        raise ConfigError("must be a non-empty string", source=source, rule=rid, key="description")
    pattern = raw["pattern"]
    if not isinstance(pattern, str) or "(?P<secret>" not in pattern:
        raise ConfigError("no group 'secret'", source=source, rule=rid, key="pattern")
    try:
        severity = Severity.parse(str(raw.get("severity", "high")))
    except KeyError:
        raise ConfigError(
            "must be one of low, medium, high, critical", source=source, rule=rid, key="severity"
        ) from None
    keywords = tuple(k.lower() for k in _str_list(raw["keywords"], source, rid, "keywords"))
    if not keywords:  # a rule runs only when one of its keywords occurs: without one it never runs
        raise ConfigError("must list at least one keyword", source=source, rule=rid, key="keywords")
    entropy = raw.get("entropy")
    if entropy is not None and (isinstance(entropy, bool) or not isinstance(entropy, (int, float))):
        raise ConfigError("must be a number (bits per character)", source=source, rule=rid, key="entropy")
    validator = raw.get("validator")
    if validator is not None:
        from sentra_scan.validators import VALIDATORS

        if validator not in VALIDATORS:
            known = ", ".join(sorted(VALIDATORS))
            raise ConfigError(
                f"unknown validator {validator!r} (known: {known})", source=source, rule=rid, key="validator"
            )
    inc, exc = _paths(raw["paths"], source, rid) if "paths" in raw else ((), ())
    env = raw.get("env")
    if env is not None and (not isinstance(env, str) or not env.replace("_", "").isalnum()):
        raise ConfigError("must be an environment-variable name", source=source, rule=rid, key="env")
    examples = _examples(raw["examples"], source, rid) if "examples" in raw else Examples()
    if require_examples and not examples.match:
        raise ConfigError("at least one example that must match is required", source=source, rule=rid, key="examples")
    generic = raw.get("generic", False)
    if not isinstance(generic, bool):
        raise ConfigError("must be true or false", source=source, rule=rid, key="generic")
    hint = raw.get("hint")
    if hint is not None and (not isinstance(hint, str) or not hint):
        raise ConfigError("must be a non-empty string", source=source, rule=rid, key="hint")
    placeholders = raw.get("placeholders", "drop")
    if placeholders not in PLACEHOLDER_MODES:
        raise ConfigError(f"must be one of {', '.join(PLACEHOLDER_MODES)}", source=source, rule=rid, key="placeholders")
    return Rule(
        hint=hint,
        placeholders=placeholders,
        id=rid,
        description=desc,
        severity=severity,
        keywords=keywords,
        pattern=pattern,
        entropy=float(entropy) if entropy is not None else None,
        validator=validator,
        paths_include=inc,
        paths_exclude=exc,
        allow=_str_list(raw["allow"], source, rid, "allow") if "allow" in raw else (),
        env=env,
        examples=examples,
        generic=generic,
        source=source,
    )


def parse_rule_file(data: Any, source: str, *, require_examples: bool = True) -> list[Rule]:
    if not isinstance(data, Mapping) or not isinstance(data.get("rules"), list):
        raise ConfigError("a rule file is a mapping with a 'rules' list", source=source)
    unknown = set(data) - {"rules", "version"}
    if unknown:
        raise ConfigError("unknown key", source=source, key=sorted(unknown)[0])
    return [parse_rule(r, source, require_examples=require_examples) for r in data["rules"]]


def validate_patterns(rules: list[Rule]) -> None:
    """Compile every pattern and allow regex once, so errors surface at load, not mid-scan."""
    import regex

    for rule in rules:
        try:
            compiled = regex.compile(rule.pattern)
        except regex.error as exc:
            raise ConfigError(f"does not compile: {exc}", source=rule.source, rule=rule.id, key="pattern") from None
        if "secret" not in compiled.groupindex:
            raise ConfigError("no group 'secret'", source=rule.source, rule=rule.id, key="pattern")
        for allow in rule.allow:
            try:
                regex.compile(allow)
            except regex.error as exc:
                raise ConfigError(f"does not compile: {exc}", source=rule.source, rule=rule.id, key="allow") from None


def rule_to_raw(rule: Rule) -> dict[str, Any]:
    """The raw mapping a rule was parsed from (less defaults), for overrides."""
    raw: dict[str, Any] = {
        "id": rule.id,
        "description": rule.description,
        "severity": rule.severity.label,
        "keywords": list(rule.keywords),
        "pattern": rule.pattern,
        "generic": rule.generic,
    }
    if rule.entropy is not None:
        raw["entropy"] = rule.entropy
    if rule.validator:
        raw["validator"] = rule.validator
    if rule.paths_include or rule.paths_exclude:
        raw["paths"] = {"include": list(rule.paths_include), "exclude": list(rule.paths_exclude)}
    if rule.allow:
        raw["allow"] = list(rule.allow)
    if rule.env:
        raw["env"] = rule.env
    if rule.hint:
        raw["hint"] = rule.hint
    if rule.placeholders != "drop":
        raw["placeholders"] = rule.placeholders
    if rule.examples.match or rule.examples.no_match:
        raw["examples"] = {
            "match": [{"path": e.path, "text": e.text} for e in rule.examples.match],
            "no-match": [{"path": e.path, "text": e.text} for e in rule.examples.no_match],
        }
    return raw


def apply_override(rule: Rule, override: Any, source: str) -> Rule:
    """A user's override of some keys of a rule; `allow` entries add to the rule's own."""
    if not isinstance(override, Mapping):
        raise ConfigError("must be a mapping of rule keys", source=source, rule=rule.id, key="override")
    if "id" in override:
        raise ConfigError("cannot override a rule's id", source=source, rule=rule.id, key="id")
    raw = rule_to_raw(rule)
    for key, value in override.items():
        if key == "allow":
            raw["allow"] = list(rule.allow) + list(_str_list(value, source, rule.id, "allow"))
        else:
            raw[key] = value
    return parse_rule(raw, source, require_examples=False)
