"""`sentra scan`: exit codes per `ExitCode`, usage errors, entry points. Exit 1 means
findings, and nothing else: a hook reads it as "block the commit"."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from sentra_scan import ExitCode, __version__
from sentra_scan.cli import main
from tests.helpers import Repo, canary_github_token, init_repo, run, sentra


def test_exit_codes_are_pinned() -> None:
    assert {c.name: c.value for c in ExitCode} == {
        "OK": 0,
        "FINDINGS": 1,
        "USAGE": 2,
        "CONFIG": 3,
        "INCOMPLETE": 4,
        "GIT": 5,
        "KEY": 6,
        "REMOTE": 7,
        "INTERNAL": 70,
    }


@pytest.fixture(scope="module")
def rule_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("rule-cache")


@pytest.fixture(autouse=True)
def shared_rule_cache(hermetic_env: Path, rule_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """This module's tests share the parsed-rules cache (keyed on content, so sharing is
    safe): a cold cache costs every CLI run about a second."""
    monkeypatch.setenv("SENTRA_CACHE_DIR", str(rule_cache))


@pytest.fixture
def work(repo: Repo) -> Repo:
    repo.write("clean.py", "print('hello')\n")
    repo.write("leak.py", f'GITHUB_TOKEN = "{canary_github_token("cli")}"\n')
    return repo


# --- 0 and 1 ---------------------------------------------------------------------------


def test_clean_exits_0(work: Repo) -> None:
    proc = sentra(["scan", "clean.py"], work.path)
    assert proc.returncode == ExitCode.OK, proc.stderr
    assert proc.stdout == ""


def test_findings_exit_1(work: Repo) -> None:
    proc = sentra(["scan", "leak.py"], work.path)
    assert proc.returncode == ExitCode.FINDINGS
    assert "leak.py:1:17  github-pat  [critical]" in proc.stdout
    assert proc.stdout.endswith("sentra: 1 secret found\n")


def test_no_paths_scans_the_current_directory(work: Repo) -> None:
    proc = sentra(["scan", "--format", "json"], work.path)
    assert proc.returncode == ExitCode.FINDINGS
    assert [f["path"] for f in json.loads(proc.stdout)["findings"]] == ["leak.py"]


def test_directory_respects_gitignore(work: Repo) -> None:
    work.write(".gitignore", "ignored/\n")
    work.write("ignored/leak.py", f'T = "{canary_github_token("ignored")}"\n')
    default = json.loads(sentra(["scan", "--format", "json", "."], work.path).stdout)
    assert {f["path"] for f in default["findings"]} == {"leak.py"}
    everything = json.loads(sentra(["scan", "--format", "json", "--no-git-ignore", "."], work.path).stdout)
    assert {f["path"] for f in everything["findings"]} == {"leak.py", "ignored/leak.py"}


def test_stdin(work: Repo) -> None:
    data = f"token: {canary_github_token('stdin')}\n".encode()
    proc = sentra(["scan", "-", "--format", "json"], work.path, input=data)
    assert proc.returncode == ExitCode.FINDINGS
    assert json.loads(proc.stdout)["findings"][0]["path"] == "<stdin>"
    named = sentra(["scan", "-", "--stdin-name", "ci/env.txt", "--format", "json"], work.path, input=data)
    assert json.loads(named.stdout)["findings"][0]["path"] == "ci/env.txt"
    clean = sentra(["scan", "-"], work.path, input=b"nothing here\n")
    assert clean.returncode == ExitCode.OK


def test_staged(work: Repo) -> None:
    work.stage("clean.py", "print('hello')\n")
    assert sentra(["scan", "--staged"], work.path).returncode == ExitCode.OK
    work.stage("leak.py", work.path.joinpath("leak.py").read_text())
    proc = sentra(["scan", "--staged", "--format", "json"], work.path)
    assert proc.returncode == ExitCode.FINDINGS
    assert [f["path"] for f in json.loads(proc.stdout)["findings"]] == ["leak.py"]


def test_suppressed_only_exits_0(work: Repo) -> None:
    work.write("allowed.py", f'T = "{canary_github_token("allowed")}"  # sentra:allow\n')
    assert sentra(["scan", "allowed.py"], work.path).returncode == ExitCode.OK
    assert sentra(["scan", "--show-suppressed", "allowed.py"], work.path).returncode == ExitCode.OK


# --- 2: usage --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["scan", "--bogus"], "No such option"),
        (["scan", "--format", "xml", "clean.py"], "Invalid value for '--format'"),
        (["scan", "no-such-file.py"], "error: no-such-file.py: no such file or directory"),
        (["scan", "--staged", "clean.py"], "error: give one of --staged, --commits/--since or PATHS"),
        (["scan", "-", "clean.py"], "error: '-' (stdin) cannot be combined with other paths"),
        (["no-such-command"], "No such command 'no-such-command'"),
        ([], "Usage: sentra"),
        (["scan", "--output"], "Option '--output' requires an argument"),
    ],
)
def test_usage_errors_exit_2(work: Repo, args: list[str], message: str) -> None:
    proc = sentra(args, work.path)
    assert proc.returncode == ExitCode.USAGE, proc.stdout + proc.stderr
    assert message in proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr


def test_help_exits_0(work: Repo) -> None:
    proc = sentra(["scan", "--help"], work.path)
    assert proc.returncode == ExitCode.OK
    assert "--staged" in proc.stdout
    assert sentra(["-h"], work.path).returncode == ExitCode.OK


# --- 3, 4, 5 ---------------------------------------------------------------------------


def test_config_error_exits_3(work: Repo) -> None:
    work.write(".sentra.yaml", "disable: [no-such-rule]\n")
    proc = sentra(["scan", "leak.py"], work.path)
    assert proc.returncode == ExitCode.CONFIG
    assert proc.stderr == "error: .sentra.yaml: disable: unknown rule 'no-such-rule'\n"


def test_incomplete_exits_0_and_4_with_strict(work: Repo) -> None:
    work.write(".sentra.yaml", "max-file-size: 100B\n")
    work.write("big.txt", "x = 1\n" * 50)
    lenient = sentra(["scan", "big.txt"], work.path)
    assert lenient.returncode == ExitCode.OK
    assert "warning: big.txt: not fully scanned: too large" in lenient.stdout
    strict = sentra(["scan", "--strict", "big.txt"], work.path)
    assert strict.returncode == ExitCode.INCOMPLETE
    as_json = sentra(["scan", "--strict", "--format", "json", "big.txt"], work.path)
    assert as_json.returncode == ExitCode.INCOMPLETE
    assert "warning: big.txt: not fully scanned: too large" in as_json.stderr


def test_findings_win_over_incomplete(work: Repo) -> None:
    work.write(".sentra.yaml", "max-file-size: 100B\n")
    work.write("big.txt", "x = 1\n" * 50)
    proc = sentra(["scan", "--strict", "big.txt", "leak.py"], work.path)
    assert proc.returncode == ExitCode.FINDINGS


def test_binary_file_is_not_incomplete(work: Repo) -> None:
    work.write("logo.png", b"\x89PNG\0\0\0" * 10)
    assert sentra(["scan", "--strict", "logo.png"], work.path).returncode == ExitCode.OK


def test_staged_outside_a_repository_exits_5(tmp_path: Path) -> None:
    proc = sentra(["scan", "--staged"], tmp_path)
    assert proc.returncode == ExitCode.GIT, proc.stdout + proc.stderr
    assert proc.stderr.startswith("error: ")
    assert "Traceback" not in proc.stderr


def test_staged_outside_a_repository_says_why(tmp_path: Path) -> None:
    proc = sentra(["scan", "--staged"], tmp_path)
    assert "repository" in proc.stderr or "work tree" in proc.stderr


def test_missing_rules_dir_exits_3(work: Repo) -> None:
    proc = sentra(["scan", "--rules-dir", "no-such-dir", "clean.py"], work.path)
    assert proc.returncode == ExitCode.CONFIG
    assert proc.stderr == "error: no rule files (*.yaml) in no-such-dir\n"


def test_staged_in_a_repository_without_commits(tmp_path: Path) -> None:
    repo = init_repo(tmp_path / "fresh")
    repo.stage("leak.py", f'T = "{canary_github_token("unborn")}"\n')
    assert sentra(["scan", "--staged"], repo.path).returncode == ExitCode.FINDINGS


# --- entry points and internal errors --------------------------------------------------


def test_version(work: Repo) -> None:
    proc = sentra(["--version"], work.path)
    assert proc.returncode == ExitCode.OK
    assert proc.stdout == f"sentra, version {__version__}\n"


def test_console_script(work: Repo) -> None:
    script = Path(sys.executable).parent / "sentra"
    if not script.exists():
        pytest.skip("the console script is not installed next to this interpreter")
    proc = run([str(script), "scan", "leak.py"], work.path, check=False)
    assert proc.returncode == ExitCode.FINDINGS


def test_python_dash_m(work: Repo) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "sentra_scan", "--version"], cwd=work.path, capture_output=True, text=True, check=False
    )
    assert (proc.returncode, proc.stdout) == (0, f"sentra, version {__version__}\n")


def boom(*args: object, **kwargs: object) -> None:
    raise RuntimeError("something broke")


def test_internal_error_exits_70_not_1(
    work: Repo, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(work.path)
    monkeypatch.setattr("sentra_scan.api.scan_paths", boom)
    assert main(["scan", "leak.py"]) == ExitCode.INTERNAL
    err = capsys.readouterr().err
    assert "internal error: RuntimeError: something broke" in err
    assert "Traceback" not in err
    assert main(["scan", "--verbose", "leak.py"]) == ExitCode.INTERNAL
    assert "Traceback" in capsys.readouterr().err


def test_internal_error_in_the_hook_exits_70(
    work: Repo, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(work.path)
    monkeypatch.setattr("sentra_scan.api.scan_staged", boom)
    assert main(["hook", "pre-commit"]) == ExitCode.INTERNAL
    assert "internal error: RuntimeError" in capsys.readouterr().err


def test_internal_error_while_reporting_exits_70(
    work: Repo, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(work.path)
    monkeypatch.setattr("sentra_scan.report.jsonfmt.JsonReporter.write", boom)
    assert main(["scan", "--format", "json", "leak.py"]) == ExitCode.INTERNAL
    capsys.readouterr()


def test_sentra_debug_shows_tracebacks(
    work: Repo, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(work.path)
    monkeypatch.setattr("sentra_scan.api.scan_paths", boom)
    monkeypatch.setenv("SENTRA_DEBUG", "1")
    assert main(["scan", "leak.py"]) == ExitCode.INTERNAL
    assert "Traceback" in capsys.readouterr().err


def test_output_into_a_missing_directory_is_not_1(work: Repo) -> None:
    proc = sentra(["scan", "--output", "no/such/dir/report.json", "leak.py"], work.path)
    assert proc.returncode not in (ExitCode.OK, ExitCode.FINDINGS)
    assert "Traceback" not in proc.stderr


def test_output_into_a_missing_directory_is_a_usage_error(work: Repo) -> None:
    proc = sentra(["scan", "--output", "no/such/dir/report.json", "leak.py"], work.path)
    assert proc.returncode == ExitCode.USAGE
