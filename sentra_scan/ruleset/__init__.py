"""The rule set: rules loaded once, a keyword automaton, patterns compiled on first use."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sentra_scan import yamlcache
from sentra_scan.errors import ConfigError
from sentra_scan.pathglob import PathMatcher
from sentra_scan.ruleset.schema import Rule, parse_rule_file, validate_patterns

if TYPE_CHECKING:
    import regex

    from sentra_scan.ruleset.prefilter import BytesPrefilter

__all__ = ["Rule", "RuleSet", "default_rules_dir", "load_rule_files"]

SCHEMA_TAG = "rules-v1"


def default_rules_dir() -> Path:
    """The rules shipped with the package (in the wheel) or beside it (in a checkout)."""
    package = Path(__file__).resolve().parent.parent
    shipped = package / "_rules"
    return shipped if shipped.is_dir() else package.parent / "rules"


def _validate_rule_file(data: Any, source: str) -> None:
    validate_patterns(parse_rule_file(data, source))


def load_rule_files(paths: Iterable[Path]) -> list[Rule]:
    rules: list[Rule] = []
    for path in paths:
        data = yamlcache.load(path, SCHEMA_TAG, _validate_rule_file, source=f"rules/{path.name}")
        rules.extend(parse_rule_file(data, f"rules/{path.name}"))
    return rules


class KeywordIndex:
    """Which rules' keywords occur in a text: one Aho-Corasick automaton when available."""

    def __init__(self, rules: list[Rule]) -> None:
        by_kw: dict[str, list[int]] = {}
        for i, rule in enumerate(rules):
            for kw in rule.keywords:
                by_kw.setdefault(kw, []).append(i)
        self._by_kw = {k: tuple(v) for k, v in by_kw.items()}
        self._automaton: Any = None
        if not self._by_kw:  # an empty automaton cannot be searched
            return
        try:
            import ahocorasick
        except ImportError:  # pure-Python path: substring tests
            return
        automaton = ahocorasick.Automaton()
        for kw in self._by_kw:
            automaton.add_word(kw, kw)
        automaton.make_automaton()
        self._automaton = automaton

    def select(self, lowered: str) -> set[int]:
        """Indices of rules with a keyword in `lowered` (the text, lower-cased)."""
        return self.select_keywords(lowered)[0]

    def select_keywords(self, lowered: str) -> tuple[set[int], set[str]]:
        """The rules with a keyword in `lowered`, and the keywords that are there."""
        if self._automaton is not None:
            # Distinct keywords first: a big fragment holds thousands of occurrences of a few.
            present = {kw for _end, kw in self._automaton.iter(lowered)}
        else:
            present = {kw for kw in self._by_kw if kw in lowered}
        found: set[int] = set()
        for kw in present:
            found.update(self._by_kw[kw])
        return found, present


class RuleSet:
    """Rules in a fixed order; patterns compile lazily and once."""

    def __init__(self, rules: list[Rule]) -> None:
        seen: dict[str, str] = {}
        for rule in rules:
            if rule.id in seen:
                raise ConfigError(f"duplicate rule id (also in {seen[rule.id]})", source=rule.source, rule=rule.id)
            seen[rule.id] = rule.source
        self.rules: tuple[Rule, ...] = tuple(rules)
        self._index: KeywordIndex | None = None
        self._prefilter: BytesPrefilter | None = None
        self._compiled: dict[int, regex.Pattern[str]] = {}
        self._allow: dict[int, list[regex.Pattern[str]]] = {}

    @classmethod
    def load(cls, rules_dir: Path | None = None) -> RuleSet:
        directory = rules_dir or default_rules_dir()
        files = sorted(directory.glob("*.yaml"))
        if not files:
            raise ConfigError(f"no rule files (*.yaml) in {directory}")
        return cls(load_rule_files(files))

    def __len__(self) -> int:
        return len(self.rules)

    def version(self) -> str:
        """A digest of the rules' content: a scan recorded with it is comparable."""
        h = hashlib.sha256()
        for r in self.rules:
            fields = (r.id, r.pattern, r.keywords, r.entropy, r.validator, r.allow, r.paths_include, r.paths_exclude)
            kept = (r.placeholders,) if r.placeholders != "drop" else ()  # the default leaves digests as they were
            h.update(repr(fields + kept).encode())
        return h.hexdigest()[:16]

    def select(self, lowered: str) -> list[int]:
        return self.select_keywords(lowered)[0]

    def select_keywords(self, lowered: str) -> tuple[list[int], set[str]]:
        """The rules with a keyword in `lowered` (the text, lower-cased), and those keywords."""
        if self._index is None:
            self._index = KeywordIndex(list(self.rules))
        found, present = self._index.select_keywords(lowered)
        return sorted(found), present

    def keyword_ends(self, data: bytes) -> list[int]:
        """The history source's prefilter: where a keyword of a rule that may run on any
        path ends in a raw chunk of `git log -p`. Rules limited to some paths (`.pgpass`,
        `master.key`) are triggered by the path instead (`path_trigger`), so their broad
        keywords do not make every hunk of a history look interesting."""
        return self._bytes_prefilter().ends(data)

    def prepare_prefilter(self) -> None:
        """Build the history prefilter's fast engine now (before forking workers)."""
        self._bytes_prefilter().prepare()

    def _bytes_prefilter(self) -> BytesPrefilter:
        if self._prefilter is None:
            from sentra_scan.ruleset.prefilter import BytesPrefilter

            self._prefilter = BytesPrefilter(k for r in self.rules if not r.paths_include for k in r.keywords)
        return self._prefilter

    def path_trigger(self) -> PathMatcher:
        """Paths whose every hunk the history source hands over (path-limited rules)."""
        return PathMatcher([g for r in self.rules for g in r.paths_include])

    def pattern(self, i: int) -> regex.Pattern[str]:
        compiled = self._compiled.get(i)
        if compiled is None:
            import regex

            rule = self.rules[i]
            try:
                compiled = regex.compile(rule.pattern)
            except regex.error as exc:
                raise ConfigError(f"does not compile: {exc}", source=rule.source, rule=rule.id, key="pattern") from None
            if "secret" not in compiled.groupindex:
                raise ConfigError("no group 'secret'", source=rule.source, rule=rule.id, key="pattern")
            self._compiled[i] = compiled
        return compiled

    def allow_patterns(self, i: int) -> list[regex.Pattern[str]]:
        pats = self._allow.get(i)
        if pats is None:
            import regex

            pats = [regex.compile(a) for a in self.rules[i].allow]
            self._allow[i] = pats
        return pats
