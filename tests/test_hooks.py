"""`sentra hook pre-commit` as git (or a hook manager) runs it, and the hand-copied shim
`hooks/pre-commit`."""

from __future__ import annotations

import json
import os
import shutil
import stat
import sys
from pathlib import Path

import pytest

from tests.helpers import (
    REPO_ROOT,
    VENV_BIN,
    Repo,
    assert_no_leak,
    canary_github_token,
    run,
    sentra,
    sentra_json,
)

TOKEN = canary_github_token("hooks")
SHIM = REPO_ROOT / "hooks" / "pre-commit"
MASKED = TOKEN[:4] + "********"


@pytest.fixture
def leaky(repo: Repo) -> Repo:
    """A repository with a secret staged on line 2 of app/settings.py."""
    repo.commit_files({"README.md": "# readme\n"})
    repo.stage("app/settings.py", f'DEBUG = False\nGITHUB_TOKEN = "{TOKEN}"\n')
    return repo


@pytest.fixture
def clean(repo: Repo) -> Repo:
    repo.commit_files({"README.md": "# readme\n"})
    repo.stage("app/settings.py", 'DEBUG = False\nGITHUB_TOKEN = os.environ["GITHUB_TOKEN"]\n')
    return repo


def with_env(**extra: str) -> dict[str, str]:
    return {**os.environ, **extra}


# --- the hook command ------------------------------------------------------------------------


def test_staged_secret_blocks_with_a_clear_message(leaky: Repo) -> None:
    proc = sentra(["hook", "pre-commit"], leaky.path)
    assert_no_leak(proc, TOKEN)
    assert proc.returncode == 1
    assert proc.stdout == ""  # the human report goes to stderr, as git shows it
    assert "app/settings.py:2:" in proc.stderr
    assert "github-pat" in proc.stderr
    assert MASKED in proc.stderr
    assert "GITHUB_TOKEN" in proc.stderr  # the hint names where the secret should go
    assert "blocked" in proc.stderr


def test_clean_changes_pass(clean: Repo) -> None:
    proc = sentra(["hook", "pre-commit"], clean.path)
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "", "")


@pytest.mark.parametrize("skip", ["sentra", "black,sentra", " sentra , flake8", "sentra,"])
def test_skip_env(leaky: Repo, skip: str) -> None:
    proc = sentra(["hook", "pre-commit"], leaky.path, env=with_env(SKIP=skip))
    assert_no_leak(proc, TOKEN)
    assert proc.returncode == 0
    assert "skipped" in proc.stderr


@pytest.mark.parametrize("skip", ["", "black", "sentra-extra", "sentrax,black"])
def test_skip_env_for_other_hooks(leaky: Repo, skip: str) -> None:
    proc = sentra(["hook", "pre-commit"], leaky.path, env=with_env(SKIP=skip))
    assert_no_leak(proc, TOKEN)
    assert proc.returncode == 1


@pytest.mark.parametrize("form", [["--format", "json"], ["--format=json"]])
def test_json_report_on_stdout(leaky: Repo, form: list[str]) -> None:
    proc = sentra(["hook", "pre-commit", *form], leaky.path)
    assert_no_leak(proc, TOKEN)
    assert proc.returncode == 1
    doc = json.loads(proc.stdout)
    [finding] = doc["findings"]
    assert (finding["path"], finding["line"], finding["rule_id"]) == ("app/settings.py", 2, "github-pat")
    assert finding["secret"] == MASKED


def test_sarif_report_on_stdout(leaky: Repo) -> None:
    proc = sentra(["hook", "pre-commit", "--format", "sarif"], leaky.path)
    assert_no_leak(proc, TOKEN)
    assert proc.returncode == 1
    doc = json.loads(proc.stdout)
    [result] = doc["runs"][0]["results"]
    assert result["ruleId"] == "github-pat"


def test_file_names_from_a_hook_manager_are_ignored(leaky: Repo) -> None:
    """The staged diff is what the commit adds, whatever file names come along."""
    proc, doc = sentra_json(["hook", "pre-commit", "README.md", "other.py"], leaky.path)
    assert proc.returncode == 1
    assert [f["path"] for f in doc["findings"]] == ["app/settings.py"]


@pytest.mark.parametrize(
    "args",
    [["--bogus"], ["-x"], ["--format", "yaml"], ["--format=xml"], ["--strict", "--nope"]],
)
def test_usage_errors_exit_2(leaky: Repo, args: list[str]) -> None:
    proc = sentra(["hook", "pre-commit", *args], leaky.path)
    assert_no_leak(proc, TOKEN)
    assert proc.returncode == 2
    assert "error" in proc.stderr


def test_help(leaky: Repo) -> None:
    proc = sentra(["hook", "pre-commit", "--help"], leaky.path)
    assert proc.returncode == 0
    assert "usage: sentra hook pre-commit" in proc.stdout


def test_outside_a_repository_is_exit_5_with_a_clear_message(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text(f't = "{TOKEN}"\n')
    proc = sentra(["hook", "pre-commit"], tmp_path)
    assert_no_leak(proc, TOKEN)
    assert proc.returncode == 5
    assert "not inside a git work tree" in proc.stderr
    assert "--output" not in proc.stderr  # not git's usage text for `diff --no-index`

    proc = sentra(["scan", "--staged"], tmp_path)
    assert proc.returncode == 5
    assert "not inside a git work tree" in proc.stderr


def test_from_inside_the_git_directory(leaky: Repo) -> None:
    proc = sentra(["hook", "pre-commit"], leaky.path / ".git" / "hooks")
    assert_no_leak(proc, TOKEN)
    assert proc.returncode == 1
    assert "app/settings.py:2:" in proc.stderr


def test_invalid_config_is_exit_3_not_1(leaky: Repo) -> None:
    leaky.write(".sentra.yaml", "rules: [this is: not valid\n")
    proc = sentra(["hook", "pre-commit"], leaky.path)
    assert_no_leak(proc, TOKEN)
    assert proc.returncode == 3


def test_strict_from_the_environment(leaky: Repo) -> None:
    leaky.write(".sentra.yaml", "max-file-size: 1KB\n")
    leaky.stage("app/settings.py", "x = 1\n" * 500)
    assert sentra(["hook", "pre-commit"], leaky.path).returncode == 0
    assert sentra(["hook", "pre-commit", "--strict"], leaky.path).returncode == 4
    assert sentra(["hook", "pre-commit"], leaky.path, env=with_env(SENTRA_STRICT="1")).returncode == 4


def test_hot_path_imports_no_heavy_module(clean: Repo) -> None:
    """A clean commit is the hook's hot path: no click, pygit2, httpx, jwt, keyring or cipher."""
    probe = (
        "import sys\n"
        "from sentra_scan.cli import main\n"
        "code = main(['hook', 'pre-commit'])\n"
        "heavy = ('click', 'pygit2', 'httpx', 'jwt', 'keyring', 'cryptography')\n"
        "print(code, sorted({m.split('.')[0] for m in sys.modules} & set(heavy)))\n"
    )
    proc = run([sys.executable, "-c", probe], clean.path, check=False)
    assert proc.stdout.strip() == "0 []", proc.stdout + proc.stderr


def test_click_route_is_the_same_command(
    leaky: Repo, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from sentra_scan.cli.app import run as click_run

    monkeypatch.chdir(leaky.path)
    assert click_run(["hook", "pre-commit", "--format", "json"]) == 1
    out = capsys.readouterr()
    assert json.loads(out.out)["findings"][0]["path"] == "app/settings.py"
    assert TOKEN not in out.out + out.err


# --- the shim for copying by hand ------------------------------------------------------------


def test_shim_is_executable_posix_sh() -> None:
    assert SHIM.stat().st_mode & stat.S_IXUSR
    assert SHIM.read_text().startswith("#!/bin/sh\n")
    run(["sh", "-n", str(SHIM)])


def install_shim(repo: Repo) -> Path:
    target = repo.path / ".git" / "hooks" / "pre-commit"
    shutil.copy2(SHIM, target)
    return target


def commit(repo: Repo, path: str, **env: str) -> tuple[int, str]:
    proc = run(["git", "commit", "-m", "change"], repo.path, check=False, env=with_env(**env))
    assert_no_leak(proc, TOKEN)
    return proc.returncode, proc.stdout + proc.stderr


def fake_bin(tmp_path: Path, **scripts: str) -> Path:
    """A PATH directory with git and the given shell-script commands, nothing else."""
    directory = tmp_path / "fakebin"
    directory.mkdir(parents=True)
    git = shutil.which("git")
    assert git is not None
    (directory / "git").symlink_to(git)
    for name, body in scripts.items():
        script = directory / name
        script.write_text(f"#!/bin/sh\n{body}\n")
        script.chmod(0o755)
    return directory


def test_shim_runs_sentra_from_path(leaky: Repo) -> None:
    install_shim(leaky)
    path = f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}"
    code, out = commit(leaky, "app/settings.py", PATH=path)
    assert code != 0
    assert "app/settings.py:2:" in out
    assert "github-pat" in out
    assert MASKED in out
    assert leaky.git("rev-list", "--count", "HEAD").strip() == "1"  # nothing committed

    code, out = commit(leaky, "app/settings.py", PATH=path, SKIP="sentra")
    assert code == 0, out
    assert "skipped" in out


def test_shim_clean_commit(clean: Repo) -> None:
    install_shim(clean)
    code, out = commit(clean, "app/settings.py", PATH=f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}")
    assert code == 0, out
    assert clean.git("rev-list", "--count", "HEAD").strip() == "2"


def test_shim_falls_back_to_python3_module(leaky: Repo, tmp_path: Path) -> None:
    install_shim(leaky)
    fake = fake_bin(tmp_path, python3=f'exec "{sys.executable}" "$@"')
    code, out = commit(leaky, "app/settings.py", PATH=str(fake))
    assert code != 0
    assert "app/settings.py:2:" in out
    assert MASKED in out


def test_shim_without_sentra_exits_2_and_says_how_to_install(leaky: Repo, tmp_path: Path) -> None:
    shim = install_shim(leaky)
    base_python = Path(sys.base_prefix) / "bin" / "python3"
    for scripts in ({}, {"python3": f'exec "{base_python}" "$@"'}):  # no python3; one without Sentra
        fake = fake_bin(tmp_path / str(len(scripts)), **scripts)
        proc = run([str(shim)], leaky.path, check=False, env=with_env(PATH=str(fake)))
        assert proc.returncode == 2, proc.stderr
        assert "not installed" in proc.stderr
        assert "pip" in proc.stderr
        code, out = commit(leaky, "app/settings.py", PATH=str(fake))
        assert code != 0
        assert "not installed" in out
