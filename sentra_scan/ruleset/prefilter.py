"""The history prefilter: where any keyword occurs in a raw chunk of `git log -p` output.

Hyperscan (its PyPI wheel bundles the library) matches all keywords at once at gigabytes
per second, case-insensitively, with no lower-cased copy of the chunk; where the wheel is
not available, a lower-cased copy goes through the Aho-Corasick automaton (or, without
pyahocorasick, plain substring searches). Either way the result is the same offsets.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from typing import Any

HYPERSCAN_AFTER = 1 << 20  # bytes scanned before the Hyperscan database is built


class _Scratch(threading.local):
    """Hyperscan's scratch space, one per thread: a database's own may not serve two scans
    at once (a history's merges are read on a thread beside its main stream)."""

    db: Any = None
    space: Any = None

    def get(self, db: Any) -> Any:
        if self.db is not db:  # first use on this thread, or a database built since
            import hyperscan

            self.db, self.space = db, hyperscan.Scratch(db)
        return self.space


class BytesPrefilter:
    """Keyword end offsets in raw bytes. Hyperscan's database takes 20-40 ms to build: it is
    built once `HYPERSCAN_AFTER` bytes have been scanned (a history), or on `prepare()`;
    until then (a push of a few commits) the automaton does it."""

    def __init__(self, keywords: Iterable[str]) -> None:
        self.keywords = sorted({k for k in keywords if k})
        self._hs: Any = None
        self._ac: Any = None
        self._volume = 0
        self._hs_missing = False
        self._scratch = _Scratch()

    def prepare(self) -> None:
        """Build the Hyperscan database now (before forking workers that share it)."""
        if self._hs is None and not self._hs_missing and self.keywords:
            try:
                import hyperscan
            except ImportError:
                self._hs_missing = True
                return
            from sentra_scan.ruleset.hscache import literal_database

            self._hs = literal_database([k.encode("utf-8") for k in self.keywords], hyperscan.HS_FLAG_CASELESS)

    @property
    def engine(self) -> str:
        """The engine a long scan uses."""
        self.prepare()
        if self._hs is not None:
            return "hyperscan"
        try:
            import ahocorasick  # noqa: F401
        except ImportError:
            return "python"
        return "ahocorasick"

    def ends(self, data: bytes) -> list[int]:
        """End offsets (of the last byte) of every keyword occurrence, ascending."""
        if not self.keywords:
            return []
        self._volume += len(data)
        if self._hs is None and self._volume >= HYPERSCAN_AFTER:
            self.prepare()
        if self._hs is not None:
            out: list[int] = []

            def on_match(_id: int, _start: int, end: int, _flags: int, _ctx: Any) -> None:
                out.append(end - 1)

            self._hs.scan(data, match_event_handler=on_match, scratch=self._scratch.get(self._hs))
            out.sort()
            return out
        low = data.lower().decode("latin-1")
        if self._ac is None:
            self._ac = _automaton(self.keywords) or False
        if self._ac:
            return [end for end, _k in self._ac.iter(low)]
        return sorted(self._python(low))

    def _python(self, low: str) -> Iterator[int]:
        for kw in self.keywords:
            i = low.find(kw)
            while i >= 0:
                yield i + len(kw) - 1
                i = low.find(kw, i + 1)


def _automaton(keywords: list[str]) -> Any:
    try:
        import ahocorasick
    except ImportError:
        return None
    automaton = ahocorasick.Automaton()
    for k in keywords:
        automaton.add_word(k, k)
    automaton.make_automaton()
    return automaton


class RuleSelector:
    """Which rules have a keyword in a text, with Hyperscan in single-match mode: each
    keyword is reported once per text however often it occurs (a big fragment holds
    thousands of "key" and "token"), with no lower-cased copy. `select` answers None when
    Hyperscan is not there (or a keyword is not ASCII, where its case-folding differs from
    Python's): the caller then uses the keyword automaton over the lower-cased text."""

    def __init__(self, keywords_of_rules: Iterable[tuple[str, ...]]) -> None:
        rules_of: dict[str, list[int]] = {}
        for i, keywords in enumerate(keywords_of_rules):
            for k in keywords:
                if k:
                    rules_of.setdefault(k, []).append(i)
        self.keywords = sorted(rules_of)
        self._rules = [tuple(rules_of[k]) for k in self.keywords]
        self._hs: Any = None
        self._scratch = _Scratch()
        if not self.keywords or not all(k.isascii() for k in self.keywords):
            return
        try:
            import hyperscan
        except ImportError:
            return
        from sentra_scan.ruleset.hscache import literal_database

        flags = hyperscan.HS_FLAG_CASELESS | hyperscan.HS_FLAG_SINGLEMATCH
        self._hs = literal_database([k.encode("ascii") for k in self.keywords], flags)

    @property
    def available(self) -> bool:
        return self._hs is not None

    def select(self, text: str) -> list[int] | None:
        found = self.select_keywords(text)
        return None if found is None else found[0]

    def select_keywords(self, text: str) -> tuple[list[int], set[str]] | None:
        """The rules with a keyword in `text`, and the keywords that are there."""
        if self._hs is None:
            return None
        hits: list[int] = []

        def on_match(kid: int, _start: int, _end: int, _flags: int, _ctx: Any) -> None:
            hits.append(kid)

        self._hs.scan(
            text.encode("utf-8", "surrogatepass"), match_event_handler=on_match, scratch=self._scratch.get(self._hs)
        )
        if not hits:
            return [], set()
        rules_of = self._rules
        found: set[int] = set()
        for kid in hits:
            found.update(rules_of[kid])
        keywords = self.keywords
        return sorted(found), {keywords[kid] for kid in hits}
