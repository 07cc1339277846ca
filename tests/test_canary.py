"""A canary secret, generated at test time, goes through every way Sentra can report it;
it must never come out whole (nor any long piece of it) on stdout, stderr or in a file."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pytest

from sentra_scan import CommitInfo, Location, Secret, scan_text
from sentra_scan.model import Candidate, redact
from sentra_scan.report import FORMATS
from tests.helpers import Repo, canary_github_token, sentra

CANARY = canary_github_token("canary-never-printed")
OTHER = canary_github_token("canary-neighbour")
WINDOW = 8  # no run of this many characters of a canary's random part may leak


def assert_no_canary(*texts: str, canaries: Iterable[str] = (CANARY, OTHER)) -> None:
    for text in texts:
        for canary in canaries:
            assert canary not in text
            body = canary[4:]
            for i in range(len(body) - WINDOW + 1):
                assert body[i : i + WINDOW] not in text, f"a piece of a canary leaked: {body[i : i + WINDOW]!r}…"


@pytest.fixture(scope="module")
def rule_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("rule-cache")


@pytest.fixture(autouse=True)
def shared_rule_cache(hermetic_env: Path, rule_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """This module's tests share the parsed-rules cache (keyed on content, so sharing is
    safe): a cold cache costs every CLI run about a second."""
    monkeypatch.setenv("SENTRA_CACHE_DIR", str(rule_cache))


@pytest.fixture
def leaky(repo: Repo) -> Repo:
    repo.write("one.py", f'GITHUB_TOKEN = "{CANARY}"\n')
    repo.write("twice.py", f'a = "{CANARY}"; b = "{CANARY}"; c = "{OTHER}"\n')
    repo.write("long.py", "x" * 500 + f" = '{CANARY}' + '{OTHER}' " + "y" * 500 + "\n")
    repo.write("allowed.py", f'T = "{CANARY}"  # sentra:allow\n')
    return repo


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("extra", [(), ("--show-suppressed",)], ids=["default", "show-suppressed"])
def test_scan_output(leaky: Repo, fmt: str, extra: tuple[str, ...]) -> None:
    proc = sentra(["scan", "--format", fmt, *extra, "."], leaky.path)
    assert proc.returncode == 1
    assert "ghp_****" in proc.stdout
    assert_no_canary(proc.stdout, proc.stderr)


@pytest.mark.parametrize("fmt", FORMATS)
def test_output_file(leaky: Repo, fmt: str, tmp_path: Path) -> None:
    target = tmp_path / f"report.{fmt}"
    proc = sentra(["scan", "--format", fmt, "--show-suppressed", "--output", str(target), "."], leaky.path)
    assert proc.returncode == 1
    assert_no_canary(proc.stdout, proc.stderr, target.read_text())


def test_stdin(leaky: Repo) -> None:
    data = f"token={CANARY} {OTHER}\n".encode()
    for fmt in FORMATS:
        proc = sentra(["scan", "-", "--format", fmt], leaky.path, input=data)
        assert proc.returncode == 1
        assert_no_canary(proc.stdout, proc.stderr)


@pytest.mark.parametrize("fmt", FORMATS)
def test_pre_commit_hook(leaky: Repo, fmt: str) -> None:
    leaky.stage("one.py", leaky.path.joinpath("one.py").read_text())
    leaky.stage("twice.py", leaky.path.joinpath("twice.py").read_text())
    proc = sentra(["hook", "pre-commit", "--format", fmt], leaky.path)
    assert proc.returncode == 1
    assert_no_canary(proc.stdout, proc.stderr)


def test_staged_scan(leaky: Repo) -> None:
    leaky.stage("long.py", leaky.path.joinpath("long.py").read_text())
    for fmt in FORMATS:
        proc = sentra(["scan", "--staged", "--format", fmt], leaky.path)
        assert proc.returncode == 1
        assert_no_canary(proc.stdout, proc.stderr)


@pytest.fixture
def history(repo: Repo) -> tuple[Repo, str]:
    root = repo.commit_files({"README.md": "hello\n"}, "root")
    repo.commit_files({"one.py": f'T = "{CANARY}"\n', "twice.py": f"a = '{CANARY}' b = '{OTHER}'\n"}, "add config")
    repo.commit_files({"three.py": f"x = '{OTHER}'\n"}, f"message with {CANARY}")
    return repo, root


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize(
    "command",
    [
        ["scan", "--commits", "ROOT..HEAD", "--include-messages"],
        ["audit", "--include-messages", "--all-occurrences"],
        ["ci", "--since", "ROOT", "--include-messages", "--no-annotations"],
    ],
    ids=["scan-commits", "audit", "ci"],
)
def test_commit_history(history: tuple[Repo, str], command: list[str], fmt: str) -> None:
    repo, root = history
    args = [a.replace("ROOT", root) for a in command]
    proc = sentra([*args, "--format", fmt], repo.path)
    assert proc.returncode == 1, proc.stderr
    assert_no_canary(proc.stdout, proc.stderr)


def test_redact() -> None:
    assert redact(CANARY) == "ghp_********"
    assert redact("short") == "********"
    assert redact("") == "********"


def test_secret_repr_and_str() -> None:
    secret = Secret(CANARY)
    assert repr(secret) == "Secret('ghp_********')"
    assert str(secret) == "ghp_********"
    assert f"{secret}" == "ghp_********"
    assert CANARY not in repr([secret, {"k": secret}])
    assert secret.reveal() == CANARY
    assert len(secret) == len(CANARY)
    assert secret == Secret(CANARY)
    assert secret != CANARY


def test_finding_and_location_str_hide_the_secret_value() -> None:
    [f] = scan_text(f"t = '{CANARY}'").findings
    assert CANARY not in repr(f.secret)
    assert CANARY not in repr(f.location)
    assert CANARY not in f.fingerprint


def test_finding_repr_hides_the_secret() -> None:
    [f] = scan_text(f"t = '{CANARY}'").findings
    assert_no_canary(repr(f), str(f))


def test_candidate_repr_hides_the_secret() -> None:
    loc = Location("a.py", 1, 6, 6 + len(CANARY), CommitInfo("c" * 40, "a", "a@b", "2026-01-01"))
    cand = Candidate("github-pat", Secret(CANARY), loc, f"t = '{CANARY}'", f"'{CANARY}'")
    assert_no_canary(repr(cand))


def test_error_messages_hold_no_secret(repo: Repo) -> None:
    """A config that mentions a secret (here, as an invalid allow regex) is named, not quoted whole."""
    repo.write(".sentra.yaml", f"allow:\n  regexes: ['({CANARY}']\n")
    proc = sentra(["scan", "."], repo.path)
    assert proc.returncode == 3
    assert "allow.regexes[0]" in proc.stderr
    assert_no_canary(proc.stdout, proc.stderr)


def test_filter_reasons_hold_no_secret() -> None:
    result = scan_text(f"t = '{CANARY}'  # sentra:allow")
    [hidden] = result.suppressed
    assert hidden.suppressed_by == "inline sentra:allow"
    assert_no_canary(hidden.suppressed_by)
