"""The detector: keyword prefilter, the selected rules' patterns under a time limit,
the `secret` group, entropy floor and structural validator."""

from __future__ import annotations

import hashlib
import sys
from bisect import bisect_right
from dataclasses import replace
from typing import NamedTuple

from sentra_scan.model import Candidate, Fragment, Location, Secret, Skipped, SkipReason, line_starts
from sentra_scan.pathglob import PathMatcher
from sentra_scan.ruleset import RuleSet
from sentra_scan.ruleset.prefilter import RuleSelector
from sentra_scan.validators import VALIDATORS, shannon_entropy

MAX_CHANGES = 100_000  # remembered blob changes (bounded: a history is never held whole)
_CLEAN: tuple[list[Candidate], list[Skipped]] = ([], [])  # shared by every change that found nothing
# From this size on, a rule bound to its keywords' lines runs on those lines only: on a
# small fragment one pass over the whole text costs less than finding the lines.
LARGE_FRAGMENT = 4096
SELECTOR_AFTER = 1 << 18  # characters scanned before the keyword selector switches to Hyperscan


class _Shape(NamedTuple):
    line_scoped: bool
    keyword_bound: bool
    required: tuple[str, ...]


class Detector:
    def __init__(self, ruleset: RuleSet, *, regex_timeout: float = 1.0, decode_depth: int = 2) -> None:
        self.ruleset = ruleset
        self.decode_depth = decode_depth
        self.regex_timeout = regex_timeout
        self._paths: dict[int, tuple[PathMatcher, PathMatcher]] = {}
        self._path_cache: dict[tuple[int, str], bool] = {}
        self._shapes: dict[int, _Shape] = {}
        self._selector: RuleSelector | None = None
        self._volume = 0
        # Results by blob change: a change that comes again in another commit (cherry-picks,
        # rebased or merged copies of a branch) is not scanned again, only attributed.
        self._changes: dict[bytes, tuple[list[Candidate], list[Skipped]]] = {}
        self.changes_reused = 0
        self.rules_run: set[int] = set()

    def path_ok(self, i: int, path: str) -> bool:
        rule = self.ruleset.rules[i]
        if not rule.paths_include and not rule.paths_exclude:
            return True
        key = (i, path)
        ok = self._path_cache.get(key)
        if ok is None:
            if len(self._path_cache) > 100_000:
                self._path_cache.clear()
            ok = self._path_cache[key] = self._path_ok(i, path)
        return ok

    def _path_ok(self, i: int, path: str) -> bool:
        matchers = self._paths.get(i)
        if matchers is None:
            rule = self.ruleset.rules[i]
            matchers = (PathMatcher(rule.paths_include), PathMatcher(rule.paths_exclude))
            self._paths[i] = matchers
        include, exclude = matchers
        if include and not include.matches(path):
            return False
        return not exclude.matches(path)

    def detect(self, fragment: Fragment, depth: int = 0) -> tuple[list[Candidate], list[Skipped]]:
        key = _change_key(fragment) if depth == 0 else None
        if key is not None:
            seen = self._changes.get(key)
            if seen is not None:
                self.changes_reused += 1
                return _for_commit(seen, fragment)
        found, skipped = self._detect(fragment, depth)
        if key is not None:
            if len(self._changes) >= MAX_CHANGES:
                self._changes.clear()
            self._changes[key] = (list(found), list(skipped)) if found or skipped else _CLEAN
        return found, skipped

    def _detect(self, fragment: Fragment, depth: int) -> tuple[list[Candidate], list[Skipped]]:
        found, skipped = self._detect_plain(fragment)
        if depth < self.decode_depth:
            self._detect_decoded(fragment, depth, found, skipped)
        return found, skipped

    def _detect_decoded(self, fragment: Fragment, depth: int, found: list[Candidate], skipped: list[Skipped]) -> None:
        """Scan what encoded tokens decode to; report at the token's place."""
        from sentra_scan.decode import decoded_tokens

        for dec in decoded_tokens(fragment.lines):
            lines = tuple(dec.text.split("\n"))
            number = fragment.line_numbers[dec.line_index]
            inner = Fragment(fragment.path, lines, (number,) * len(lines), fragment.commit, fragment.blob_id)
            cands, skips = self.detect(inner, depth + 1)
            skipped.extend(skips)
            line_text = fragment.lines[dec.line_index]
            for c in cands:
                loc = Location(fragment.path, number, dec.start + 1, dec.end + 1, fragment.commit)
                encoding = dec.encoding if not c.encoding else f"{c.encoding} in {dec.encoding}"
                found.append(Candidate(c.rule_id, c.secret, loc, line_text, c.match_text, encoding))

    def _detect_plain(self, fragment: Fragment) -> tuple[list[Candidate], list[Skipped]]:
        text = fragment.text
        selected, present, lowered = self._select(text)
        if not selected:
            return [], []
        starts = line_starts(fragment.lines)
        by_line = len(fragment.lines) > 1
        if by_line and lowered is None:
            lowered = text.lower()
        # Offsets in the lower-cased text are offsets in the text (almost always: a few
        # characters lower-case to two).
        by_line = by_line and lowered is not None and len(lowered) == len(text)
        large = len(text) >= LARGE_FRAGMENT
        found: list[Candidate] = []
        skipped: list[Skipped] = []
        seen_lines: dict[str, list[int]] = {}  # a keyword's lines, for every rule that has it
        for i in selected:
            if not self.path_ok(i, fragment.path):
                continue
            required = self.required(i)
            if required and not all(r in text for r in required):
                continue  # no match can be here (a URL rule on a text without "@")
            self.rules_run.add(i)
            try:
                if by_line and lowered is not None and (self.line_scoped(i) or (large and self.keyword_bound(i))):
                    keywords = self.ruleset.rules[i].keywords
                    for idx in _keyword_lines(keywords, present, lowered, starts, seen_lines):
                        line = fragment.lines[idx]
                        if not required or all(r in line for r in required):
                            self._run_rule(i, fragment, line, [0], found, idx)
                else:
                    self._run_rule(i, fragment, text, starts, found)
            except TimeoutError:
                rule_id = self.ruleset.rules[i].id
                commit = fragment.commit.id if fragment.commit else None
                skipped.append(
                    Skipped(
                        fragment.path, SkipReason.TIMEOUT, f"rule {rule_id} exceeded {self.regex_timeout:g}s", commit
                    )
                )
        return found, skipped

    def _select(self, text: str) -> tuple[list[int], set[str], str | None]:
        """Indices of the rules with a keyword in `text`, the keywords that are there, and
        the lower-cased text when it was needed for that. Hyperscan's database takes ~70 ms
        to build: worth it for a history, not for a commit hook's few fragments."""
        self._volume += len(text)
        # Hyperscan as soon as its import is paid for (a history's raw-stream prefilter
        # takes it after 1 MB): the automaton's pass over a big text costs more.
        if self._selector is not None or self._volume >= SELECTOR_AFTER or "hyperscan" in sys.modules:
            found = self._hyperscan_selector().select_keywords(text)
            if found is not None:
                return found[0], found[1], None
        lowered = text.lower()
        selected, present = self.ruleset.select_keywords(lowered)
        return selected, present, lowered

    def _hyperscan_selector(self) -> RuleSelector:
        if self._selector is None:
            self._selector = RuleSelector(r.keywords for r in self.ruleset.rules)
        return self._selector

    def prepare(self) -> None:
        """Build now what a long scan builds on the way (the Hyperscan selector, every rule's
        shape): before forking workers, so that they share it instead of each building its own."""
        self._hyperscan_selector()
        for i in range(len(self.ruleset.rules)):
            self._shape(i)

    def _shape(self, i: int) -> _Shape:
        """What rule `i`'s pattern allows (read once from its syntax tree, see linescope)."""
        shape = self._shapes.get(i)
        if shape is None:
            from sentra_scan.ruleset.linescope import holds_keyword, required_literals, single_line

            rule = self.ruleset.rules[i]
            one_line = single_line(rule.pattern)
            scoped = rule.generic and one_line
            bound = scoped or (one_line and holds_keyword(rule.pattern, rule.keywords))
            shape = self._shapes[i] = _Shape(scoped, bound, required_literals(rule.pattern))
        return shape

    def required(self, i: int) -> tuple[str, ...]:
        """Punctuation every match of rule `i` contains (see linescope.required_literals)."""
        return self._shape(i).required

    def line_scoped(self, i: int) -> bool:
        """Run on the lines holding one of its keywords only: a generic rule (its keyword
        is the name it matches) whose pattern cannot cross a line (see linescope)."""
        return self._shape(i).line_scoped

    def keyword_bound(self, i: int) -> bool:
        """Like `line_scoped`, for any rule whose pattern cannot cross a line and whose
        every match holds one of its keywords (a provider's prefix or name, see linescope):
        worth it on large fragments, where the rule's keyword sits on a few lines of many."""
        return self._shape(i).keyword_bound

    def _run_rule(
        self, i: int, fragment: Fragment, text: str, starts: list[int], out: list[Candidate], first_line: int = 0
    ) -> None:
        rule = self.ruleset.rules[i]
        validator = VALIDATORS[rule.validator] if rule.validator else None
        for m in self.ruleset.pattern(i).finditer(text, timeout=self.regex_timeout):
            start, end = m.span("secret")
            if start < 0 or end <= start:
                continue
            secret = text[start:end]
            if rule.entropy is not None and shannon_entropy(secret) < rule.entropy:
                continue
            if validator is not None and not validator(secret):
                continue
            idx = first_line + bisect_right(starts, start) - 1
            line_text = fragment.lines[idx]
            offset = starts[idx - first_line]
            col = start - offset
            end_col = min(end - offset, len(line_text))
            location = Location(fragment.path, fragment.line_numbers[idx], col + 1, end_col + 1, fragment.commit)
            out.append(Candidate(rule.id, Secret(secret), location, line_text, m.group(0)))


def _keyword_lines(
    keywords: tuple[str, ...], present: set[str], lowered: str, starts: list[int], seen: dict[str, list[int]]
) -> list[int]:
    """Indices of the lines of `lowered` that hold one of `keywords`, in order: only those
    in `present` (the keywords the selector saw) are looked for. `seen` remembers each
    keyword's lines for the other rules run on the same text."""
    found: set[int] = set()
    for kw in keywords:
        if kw not in present:
            continue  # a rule selected by another of its keywords: no pass over the text
        lines = seen.get(kw)
        if lines is None:
            lines = seen[kw] = _lines_of(kw, lowered, starts)
        found.update(lines)
    return sorted(found)


def _lines_of(kw: str, lowered: str, starts: list[int]) -> list[int]:
    out = []
    end = len(lowered)
    pos = lowered.find(kw)
    while pos >= 0:
        idx = bisect_right(starts, pos) - 1
        out.append(idx)
        pos = lowered.find(kw, starts[idx + 1] if idx + 1 < len(starts) else end)
    return out


def _change_key(fragment: Fragment) -> bytes | None:
    """What makes two history fragments the same text: the blob change they come from (a
    full 'old..new' id pair), the path, and the hunk's place in the new blob; as a 16-byte
    digest (a remembered change costs ~100 bytes, not the strings)."""
    if not fragment.blob_id or ".." not in fragment.blob_id or not fragment.line_numbers:
        return None
    text = f"{fragment.blob_id}\0{fragment.path}\0{fragment.line_numbers[0]}\0{len(fragment.lines)}"
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()


def _for_commit(
    seen: tuple[list[Candidate], list[Skipped]], fragment: Fragment
) -> tuple[list[Candidate], list[Skipped]]:
    """Results of the same change found in another commit, attributed to this one."""
    found, skipped = seen
    commit = fragment.commit
    cands = [replace(c, location=replace(c.location, commit=commit)) for c in found]
    skips = [replace(s, commit=commit.id if commit else None) for s in skipped]
    return cands, skips
