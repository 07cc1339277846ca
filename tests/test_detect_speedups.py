"""The detector's shortcuts give the answers of the plain way:

- generic rules whose pattern cannot cross a line run on the lines holding a keyword
  (`linescope`), not on the whole fragment; so do, on large fragments, the rules whose
  every match holds one of their keywords;
- after a few hundred texts, rules are selected with Hyperscan in single-match mode
  instead of the keyword automaton over a lower-cased copy;
- encoded tokens are looked for in one pass over the whole text.
"""

from __future__ import annotations

import random

import pytest

from sentra_scan import decode
from sentra_scan.detect import Detector
from sentra_scan.model import Fragment
from sentra_scan.ruleset import RuleSet
from sentra_scan.ruleset.examples import expand
from sentra_scan.ruleset.linescope import holds_keyword, required_literals, single_line
from sentra_scan.ruleset.prefilter import RuleSelector


@pytest.fixture(scope="module")
def rules() -> RuleSet:
    return RuleSet.load()


@pytest.fixture(scope="module")
def texts(rules: RuleSet) -> list[Fragment]:
    """Every rule's examples, as fragments of several lines among ordinary code lines."""
    rng = random.Random(7)
    filler = [
        "def handler(event, context):",
        "    return {'statusCode': 200}",
        "tokenizer = build_tokenizer(vocab)",
        "# the password prompt lives in auth.py",
        "x = compute(a, b)  # secret sauce",
        "",
        "  key: value",
    ]
    out = []
    for r in rules.rules:
        for n, ex in enumerate((*r.examples.match, *r.examples.no_match)):
            body = expand(ex.text, f"{r.id}-{n}").split("\n")
            lines = [*rng.sample(filler, 3), *body, *rng.sample(filler, 2)]
            out.append(Fragment(ex.path, tuple(lines), tuple(range(1, len(lines) + 1))))
    return out


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        (r"password\s*=\s*(?P<secret>\S+)", False),  # \s takes a line feed
        (r"password[ \t]*=[ \t]*(?P<secret>\S+)", True),
        (r"a\nb", False),
        (r"[^\"]+", False),
        (r"[^\"\n]+", True),
        (r"a.b", True),
        (r"(?s)a.b", False),
        (r"^x", False),  # the start of the whole text only
        (r"(?m)^x$", True),
        (r"\Ax", False),
        (r"(?<=\s)x", False),  # sees the line feed before a line
        (r"(?<![A-Za-z])pass", True),
        (r"(?P<q>[\"'])x(?P=q)", True),
        (r"(?i:token)[A-Z0-9]{20}", True),
        (r"\p{L}+", False),  # regex-only syntax: assumed multi-line
        (r"(a)?(?(1)b|c)", False),
    ],
)
def test_single_line(pattern: str, expected: bool) -> None:
    assert single_line(pattern) is expected


@pytest.mark.parametrize(
    ("pattern", "keywords", "expected"),
    [
        (r"\b(?P<secret>ghp_[A-Za-z0-9]{36})\b", ("ghp_",), True),
        (r"(?i)GHP_[a-z]{4}", ("ghp_",), True),  # compared lower-cased, as the prefilter does
        (r"(?:AKIA|ASIA)[A-Z2-7]{16}", ("akia", "asia"), True),
        (r"(?:AKIA|ASIA)[A-Z2-7]{16}", ("akia",), False),  # ASIA... holds no keyword
        (r"(?i:duo[\w.-]{0,20}secret|\bskey)=(?P<secret>\w+)", ("duo", "skey"), True),
        (r"(?i:github|\bgh)[\w.-]{0,30}token", ("github", "gh_"), False),  # "gh-token" holds none
        (r"x[ \t]*(?:password|pwd)=", ("password", "pwd"), True),  # a common prefix the parser factors out
        (r"pass(?:word)?=", ("password",), False),  # "pass=" holds no keyword
        (r"(?:token)?[0-9a-f]{40}", ("token",), False),  # optional
        (r"(?:token)+[0-9a-f]{40}", ("token",), True),
        (r"[Xx]ox[ab]-\d+", ("xoxa-", "xoxb-"), True),
        (r"\d{4}", ("1234",), False),
        (r"\p{L}+key", ("key",), False),  # regex-only syntax: unknown, assumed not
        (r"anything", (), False),
    ],
)
def test_holds_keyword(pattern: str, keywords: tuple[str, ...], expected: bool) -> None:
    assert holds_keyword(pattern, keywords) is expected


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        (r"\bhttps?://[^\s:@]{0,64}:(?P<secret>[^\s@]{1,128})@", ("://", "@")),  # ":" is in "://"
        (r"(?i)password\s*=\s*'(?P<secret>[^']+)'", ("'", "=")),  # case flags leave punctuation alone
        (r"key(?:=|:)(?P<secret>\w+)", ()),  # an alternative: neither is required
        (r"key(?:==)?(?P<secret>\w+)", ()),  # optional
        (r"key(?:==)+(?P<secret>\w+)", ("==",)),  # repeated at least once
        (r"(?<=@)\w+", ()),  # a lookaround is not in the match
        (r"(?:ab|cd)-(?:ef|gh)", ("-",)),
        (r"a{e<=1}@b", ()),  # regex's fuzzy matching: the stdlib parser would read literals
        (r"\p{L}+@", ()),  # regex-only syntax the stdlib parser refuses
        (r"[@]x", ("@",)),  # a one-character class is that character
        (r"[@:]x", ()),  # a class of several is not a literal
    ],
)
def test_required_literals(pattern: str, expected: tuple[str, ...]) -> None:
    assert required_literals(pattern) == expected


def test_every_match_example_holds_its_rules_required_literals(rules: RuleSet) -> None:
    """The check the detector relies on to skip a rule, against every rule's own examples."""
    import regex

    with_literals = 0
    for r in rules.rules:
        required = required_literals(r.pattern)
        with_literals += bool(required)
        for n, ex in enumerate(r.examples.match):
            text = expand(ex.text, f"{r.id}-{n}")
            for m in regex.finditer(r.pattern, text):
                assert all(lit in m.group(0) for lit in required), (r.id, required)
    assert with_literals > 150


def test_the_generic_rules_run_by_line(rules: RuleSet) -> None:
    det = Detector(rules)
    scoped = [r.id for i, r in enumerate(rules.rules) if det.line_scoped(i)]
    assert "generic-credential-assignment" in scoped
    assert all(rules.rules[i].generic for i in range(len(rules.rules)) if det.line_scoped(i))


def _candidates(det: Detector, fragments: list[Fragment]) -> list[tuple[str, str, int, int, int]]:
    out = []
    for f in fragments:
        found, _skipped = det.detect(f)
        out += [
            (c.rule_id, c.secret.reveal(), c.location.line, c.location.column, c.location.end_column) for c in found
        ]
    return out


def test_line_scoped_rules_find_what_the_whole_text_finds(
    rules: RuleSet, texts: list[Fragment], monkeypatch: pytest.MonkeyPatch
) -> None:
    fast = _candidates(Detector(rules), texts)
    plain = Detector(rules)
    monkeypatch.setattr(plain, "line_scoped", lambda _i: False)
    monkeypatch.setattr(plain, "required", lambda _i: ())
    assert fast == _candidates(plain, texts)
    assert any(rid.startswith("generic-") for rid, *_ in fast)


def test_keyword_bound_rules_find_on_large_fragments_what_the_whole_text_finds(
    rules: RuleSet, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every fragment taken as large; each rule's examples come with all its keywords on a
    line of their own, so that a pattern that could match without a keyword would find, on
    the whole text, what the line-by-line run misses."""
    import sentra_scan.detect as detect

    det = Detector(rules)
    bound = [r.id for i, r in enumerate(rules.rules) if det.keyword_bound(i)]
    assert len(bound) > len(rules.rules) // 2
    assert "aws-access-key-id" in bound
    assert "github-pat" in bound
    keyed = []
    for r in rules.rules:
        for n, ex in enumerate((*r.examples.match, *r.examples.no_match)):
            lines = (" ".join(r.keywords), "x = 1", *expand(ex.text, f"{r.id}-{n}").split("\n"), "y = 2")
            keyed.append(Fragment(ex.path, lines, tuple(range(1, len(lines) + 1))))
    monkeypatch.setattr(detect, "LARGE_FRAGMENT", 0)
    fast = _candidates(Detector(rules), keyed)
    plain = Detector(rules)
    monkeypatch.setattr(plain, "line_scoped", lambda _i: False)
    monkeypatch.setattr(plain, "keyword_bound", lambda _i: False)
    monkeypatch.setattr(plain, "required", lambda _i: ())
    assert fast == _candidates(plain, keyed)
    assert len({rid for rid, *_ in fast} & set(bound)) > 100


def test_the_selector_picks_the_automatons_rules(rules: RuleSet, texts: list[Fragment]) -> None:
    selector = RuleSelector(r.keywords for r in rules.rules)
    if not selector.available:
        pytest.skip("Hyperscan is not installed here")
    extra = ["", "nothing to see", "PASSWORD=" + "x" * 5000, "ÄÖÜ token ß", "github_pat " * 1000]
    for text in [f.text for f in texts] + extra:
        assert selector.select(text) == rules.select(text.lower())
        # The keywords each engine saw: the detector looks for the lines of these only.
        found = selector.select_keywords(text)
        assert found is not None
        assert found == rules.select_keywords(text.lower())
        assert found[1] == {k for r in rules.rules for k in r.keywords if k in text.lower()}


def test_without_hyperscan_the_selector_defers(rules: RuleSet) -> None:
    selector = RuleSelector(r.keywords for r in rules.rules)
    selector._hs = None
    assert selector.select("password = 'x'") is None
    assert RuleSelector([("clé",)]).select("clé") is None  # a non-ASCII keyword: Python's case-folding


def test_the_selector_switches_once_hyperscan_is_imported(rules: RuleSet, texts: list[Fragment]) -> None:
    """A history's raw-stream prefilter imports Hyperscan after 1 MB; from then on rules are
    selected with it too, whatever the volume of text scanned so far."""
    pytest.importorskip("hyperscan")
    det = Detector(rules)
    det.detect(texts[0])
    assert det._selector is not None


def test_detection_is_the_same_before_and_after_the_selector_switch(
    rules: RuleSet, texts: list[Fragment], monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys

    import sentra_scan.detect as detect

    with monkeypatch.context() as m:
        m.delitem(sys.modules, "hyperscan", raising=False)  # as in a process that has not imported it
        plain = Detector(rules)
        before = _candidates(plain, texts)
        assert plain._selector is None  # the keyword automaton did it
    monkeypatch.setattr(detect, "SELECTOR_AFTER", 0)
    assert _candidates(Detector(rules), texts) == before


def _decoded_line_by_line(lines: tuple[str, ...]) -> list[decode.Decoded]:
    out = []
    for i, line in enumerate(lines):
        for m in decode._B64.finditer(line):
            token = m.group(1)
            if decode._wordlike(token):
                continue
            text = decode._b64decode(token)
            if text is not None and len(text) >= 8:
                out.append(decode.Decoded(i, m.start(1), m.end(1), text, "base64"))
        for m in decode._PCT.finditer(line):
            text = decode.unquote(m.group(0))
            if text != m.group(0):
                out.append(decode.Decoded(i, m.start(), m.end(), text, "percent"))
    return out


def test_decoding_in_one_pass_finds_what_line_by_line_finds(texts: list[Fragment]) -> None:
    import base64

    token = base64.b64encode(b"user:correct-horse-battery").decode()
    samples = [f.lines for f in texts] + [
        (f"Authorization: Basic {token}", "x%3Dy%20z", "", token + " " + token),
        ("a" * 20, token[:-2], "https://h/p?q=%41%42%43"),
    ]
    for lines in samples:
        assert sorted(decode.decoded_tokens(lines), key=repr) == sorted(_decoded_line_by_line(lines), key=repr)


def test_base64_runs_are_the_tokens_the_lookaround_pattern_finds() -> None:
    """decoded_tokens takes whole runs of base64 characters (possessively) and tests each;
    the spans are those of the plain pattern with a look-behind at every position."""
    rng = random.Random(5)
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/_-="
    for _ in range(3000):
        parts = []
        for _ in range(rng.randint(1, 6)):
            run = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40)))
            parts += [run, rng.choice([" ", ".", ":", '"', "\n", "é", "€", "日本", "=", "%", ""])]
        text = "".join(parts)
        plain = [m.span(1) for m in decode._B64.finditer(text) if not decode._wordlike(m.group(1))]
        fast = [m.span(1) for m in decode._B64_RUN.finditer(text) if not decode._skip(m.group(1))]
        assert fast == plain, text
        # And the byte-table search finds the runs the possessive pattern finds.
        assert list(decode.base64_runs(text)) == [m.span(1) for m in decode._B64_RUN.finditer(text)], text


def test_tokens_of_ascii_text_are_always_decoded() -> None:
    """The lead-character filter never drops the base64 of ASCII text (standard, URL-safe,
    padded or not), and drops most identifiers, paths and binary data."""
    import base64

    rng = random.Random(11)
    printable = [chr(c) for c in range(32, 127)]
    for n in range(12, 300, 3):
        raw = "".join(rng.choice(printable) for _ in range(n)).encode()
        for token in (base64.b64encode(raw).decode(), base64.urlsafe_b64encode(raw).decode().rstrip("=")):
            assert not decode._skip(token), token
    dropped = [
        "src/flask/json/provider/tag.py",
        "getAttributeValueForElementNode",
        "a94a8fe5ccb19ba61c4c0873d391e987982fbbd3",
        base64.b64encode(bytes(range(128, 256))).decode(),
    ]
    assert all(decode._skip(t) for t in dropped)


def test_the_history_prefilter_engines_agree(rules: RuleSet, monkeypatch: pytest.MonkeyPatch) -> None:
    """The raw-stream prefilter starts on the keyword automaton (a push of a few commits does
    not pay for a Hyperscan database) and switches after HYPERSCAN_AFTER bytes: the offsets
    are the same either way, upper case and non-ASCII bytes included."""
    from sentra_scan.ruleset import prefilter

    keywords = [k for r in rules.rules if not r.paths_include for k in r.keywords]
    parts = [expand(ex.text, f"{r.id}-{n}") for r in rules.rules for n, ex in enumerate(r.examples.match)]
    data = "\n".join(parts).encode() + "\nÄÖÜ TOKEN Password=é AKIA ghp_ x".encode()
    small = prefilter.BytesPrefilter(keywords)
    expected = small.ends(data)
    assert small._hs is None  # under the threshold: no database built
    assert len(expected) > 100
    monkeypatch.setattr(prefilter, "HYPERSCAN_AFTER", 1)
    switched = prefilter.BytesPrefilter(keywords)
    assert switched.ends(data) == expected
    try:
        import hyperscan  # noqa: F401
    except ImportError:
        pytest.skip("Hyperscan is not installed here")
    assert switched._hs is not None
    assert switched.engine == "hyperscan"
