"""`.pre-commit-hooks.yaml` under the real pre-commit framework, against a snapshot of this
checkout: pre-commit builds the hook's virtualenv (pip, from PyPI) and runs it.

Slow: `try-repo` builds a fresh environment in a temp store on every run; the tests that use
a `.pre-commit-config.yaml` share one PRE_COMMIT_HOME (a temp dir), built once.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from tests.helpers import REPO_ROOT, VENV_BIN, Repo, assert_no_leak, canary_github_token, copy_checkout, run

pytestmark = pytest.mark.slow

TOKEN = canary_github_token("pre-commit-framework")
PRE_COMMIT = VENV_BIN / "pre-commit"


def test_manifest() -> None:
    hooks = yaml.safe_load((REPO_ROOT / ".pre-commit-hooks.yaml").read_text())
    [hook] = [h for h in hooks if h["id"] == "sentra"]
    assert hook["id"] == "sentra"
    assert hook["entry"] == "sentra hook pre-commit"
    assert hook["language"] == "python"
    assert hook["pass_filenames"] is False
    assert hook["always_run"] is True
    assert hook["stages"] == ["pre-commit"]
    assert hook["name"]
    assert hook["description"]
    run([str(PRE_COMMIT), "validate-manifest", str(REPO_ROOT / ".pre-commit-hooks.yaml")])


@pytest.fixture(scope="session")
def snapshot(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """This checkout (with uncommitted work, without .venv and caches), committed in a temp repo."""
    return copy_checkout(tmp_path_factory.mktemp("checkout") / "sentra-scan")


@pytest.fixture(scope="session")
def pre_commit_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Shared by this module's tests: the hook's environment is built once."""
    return tmp_path_factory.mktemp("pre-commit-home")


@pytest.fixture
def framework_env(pre_commit_home: Path) -> dict[str, str]:
    env = {
        **os.environ,
        "PRE_COMMIT_HOME": str(pre_commit_home),
        "PIP_CACHE_DIR": str(pre_commit_home.parent / "pip-cache"),  # shared with test_wheel
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        "PRE_COMMIT_COLOR": "never",
        "PATH": f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}",
    }
    env.pop("VIRTUAL_ENV", None)
    return env


def try_repo(repo: Repo, snapshot: Path, env: dict[str, str]) -> tuple[int, str]:
    proc = run([str(PRE_COMMIT), "try-repo", str(snapshot), "sentra", "--verbose"], repo.path, check=False, env=env)
    assert_no_leak(proc, TOKEN)
    return proc.returncode, proc.stdout + proc.stderr


@pytest.fixture
def project(repo: Repo) -> Repo:
    repo.commit_files({"README.md": "# readme\n"})
    return repo


def test_staged_secret_fails_the_hook(project: Repo, snapshot: Path, framework_env: dict[str, str]) -> None:
    project.stage("app/settings.py", f'DEBUG = False\nGITHUB_TOKEN = "{TOKEN}"\n')
    code, out = try_repo(project, snapshot, framework_env)
    assert code != 0, out
    assert "Failed" in out
    assert "app/settings.py:2:" in out
    assert "github-pat" in out
    assert TOKEN[:4] + "********" in out
    assert not (Path(os.environ["HOME"]) / ".cache" / "pre-commit").exists()  # PRE_COMMIT_HOME was used


def test_clean_changes_pass(project: Repo, snapshot: Path, framework_env: dict[str, str]) -> None:
    project.stage("app/settings.py", 'GITHUB_TOKEN = os.environ["GITHUB_TOKEN"]\n')
    code, out = try_repo(project, snapshot, framework_env)
    assert code == 0, out
    assert "Passed" in out


def test_skip_env(project: Repo, snapshot: Path, framework_env: dict[str, str]) -> None:
    project.stage("app/settings.py", f'GITHUB_TOKEN = "{TOKEN}"\n')
    code, out = try_repo(project, snapshot, {**framework_env, "SKIP": "sentra"})
    assert code == 0, out
    assert "Skipped" in out


@pytest.fixture
def configured(project: Repo, snapshot: Path, framework_env: dict[str, str]) -> Repo:
    """The way users set it up: a committed .pre-commit-config.yaml and `pre-commit install`."""
    rev = run(["git", "rev-parse", "HEAD"], snapshot).stdout.strip()
    config = {"repos": [{"repo": str(snapshot), "rev": rev, "hooks": [{"id": "sentra"}]}]}
    project.commit_files({".pre-commit-config.yaml": yaml.safe_dump(config)}, "use pre-commit")
    run([str(PRE_COMMIT), "install"], project.path, env=framework_env)
    return project


def git_commit(repo: Repo, env: dict[str, str]) -> tuple[int, str]:
    proc = run(["git", "commit", "-m", "change"], repo.path, check=False, env=env)
    assert_no_leak(proc, TOKEN)
    return proc.returncode, proc.stdout + proc.stderr


def test_git_commit_through_the_framework(configured: Repo, framework_env: dict[str, str]) -> None:
    configured.stage("app/settings.py", f'GITHUB_TOKEN = "{TOKEN}"\n')
    code, out = git_commit(configured, framework_env)
    assert code != 0
    assert "app/settings.py:1:" in out
    assert configured.git("rev-list", "--count", "HEAD").strip() == "2"

    configured.stage("app/settings.py", 'GITHUB_TOKEN = os.environ["GITHUB_TOKEN"]\n')
    code, out = git_commit(configured, framework_env)
    assert code == 0, out
    assert configured.git("rev-list", "--count", "HEAD").strip() == "3"


def test_unstaged_secret_is_not_reported(configured: Repo, framework_env: dict[str, str]) -> None:
    """pre-commit stashes unstaged changes; the hook sees (and scans) only the staged ones."""
    configured.stage("app/settings.py", "x = 1\n")
    configured.write("app/settings.py", f'x = 1\nGITHUB_TOKEN = "{TOKEN}"\n')
    proc = run([str(PRE_COMMIT), "run", "sentra"], configured.path, check=False, env=framework_env)
    assert_no_leak(proc, TOKEN)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert TOKEN in (configured.path / "app" / "settings.py").read_text()  # restored after the run
