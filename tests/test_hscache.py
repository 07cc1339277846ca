"""The Hyperscan keyword databases come from the cache directory when they were built
before, are rebuilt when the entry is damaged or refused, and never need the cache."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

hyperscan = pytest.importorskip("hyperscan")

from sentra_scan.ruleset import hscache  # noqa: E402
from sentra_scan.ruleset.prefilter import BytesPrefilter, RuleSelector  # noqa: E402

KEYWORDS = [b"password", b"ghp_", b"akia", b"token"]
FLAGS = hyperscan.HS_FLAG_CASELESS
TEXT = b"x = 1\nPassword = 'hunter2'\nTOKEN ghp_abc AKIA\n"


def ends(db: Any, data: bytes = TEXT) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    # A loaded database has no scratch space of its own: Sentra always passes one.
    scratch = hyperscan.Scratch(db)
    db.scan(data, match_event_handler=lambda kid, _s, end, _f, _c: out.append((kid, end)), scratch=scratch)
    return sorted(out, key=lambda pair: pair[1])


def entries(home: Path) -> list[Path]:
    return sorted((home / ".cache" / "sentra-scan" / "hyperscan").glob("*.db"))


def test_a_database_is_built_once_then_loaded(hermetic_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = hscache.literal_database(KEYWORDS, FLAGS)
    [entry] = entries(hermetic_env)
    expected = ends(first)
    assert [KEYWORDS[kid] for kid, _end in expected] == [b"password", b"token", b"ghp_", b"akia"]
    assert [end for _kid, end in expected] == [
        TEXT.lower().index(KEYWORDS[kid]) + len(KEYWORDS[kid]) for kid, _e in expected
    ]

    def no_compile(*_a: object, **_k: object) -> None:
        raise AssertionError("compiled again")

    monkeypatch.setattr(hyperscan, "Database", no_compile)
    assert ends(hscache.literal_database(KEYWORDS, FLAGS)) == expected
    assert entries(hermetic_env) == [entry]


def test_other_keywords_or_flags_are_other_entries(hermetic_env: Path) -> None:
    hscache.literal_database(KEYWORDS, FLAGS)
    hscache.literal_database(KEYWORDS[:3], FLAGS)
    hscache.literal_database(KEYWORDS, FLAGS | hyperscan.HS_FLAG_SINGLEMATCH)
    assert len(entries(hermetic_env)) == 3
    assert [kid for kid, _end in ends(hscache.literal_database(KEYWORDS[:3], FLAGS))] == [0, 1, 2]


@pytest.mark.parametrize(
    "damage",
    [
        lambda raw: raw[: len(raw) // 2],  # truncated
        lambda raw: raw[:40] + bytes([raw[40] ^ 1]) + raw[41:],  # a flipped bit
        lambda raw: b"",  # empty
        lambda raw: (
            __import__("hashlib").sha256(b"garbage" * 9).digest() + b"garbage" * 9
        ),  # digest fits, Hyperscan refuses
    ],
)
def test_a_damaged_entry_is_rebuilt(hermetic_env: Path, damage: Any) -> None:
    expected = ends(hscache.literal_database(KEYWORDS, FLAGS))
    [entry] = entries(hermetic_env)
    entry.write_bytes(damage(entry.read_bytes()))
    assert ends(hscache.literal_database(KEYWORDS, FLAGS)) == expected
    assert hscache._read(entry) is not None  # rewritten whole


def test_an_unwritable_cache_only_costs_a_compile(hermetic_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = hermetic_env / "not-a-dir"
    blocker.write_text("a file where the cache directory would be\n")
    monkeypatch.setenv("SENTRA_CACHE_DIR", str(blocker))
    assert ends(hscache.literal_database(KEYWORDS, FLAGS))
    assert blocker.read_text().startswith("a file")


def test_the_prefilters_share_their_cached_databases(hermetic_env: Path) -> None:
    keywords = ["password", "ghp_", "akia", "token"]
    data = TEXT * 3
    built = BytesPrefilter(keywords)
    built.prepare()
    selector = RuleSelector([("password",), ("ghp_", "token"), ("akia",)])
    assert len(entries(hermetic_env)) == 2
    loaded = BytesPrefilter(keywords)
    loaded.prepare()
    assert loaded.ends(data) == built.ends(data)
    again = RuleSelector([("password",), ("ghp_", "token"), ("akia",)])
    assert again.select_keywords(data.decode()) == selector.select_keywords(data.decode())
    assert os.listdir(hermetic_env / ".cache" / "sentra-scan" / "hyperscan") == [e.name for e in entries(hermetic_env)]
