"""The wheel as users get it: built from a snapshot of this checkout, installed into a fresh
virtualenv (dependencies from PyPI), run from outside the source tree."""

from __future__ import annotations

import json
import os
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from sentra_scan.ruleset import RuleSet
from tests.helpers import (
    Repo,
    assert_no_leak,
    canary_github_token,
    copy_checkout,
    init_repo,
    run,
)

pytestmark = pytest.mark.slow

TOKEN = canary_github_token("wheel")


def rule_files(checkout: Path) -> list[str]:
    return sorted(p.name for p in (checkout / "rules").glob("*.yaml"))


@pytest.fixture(scope="module")
def checkout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A snapshot of this checkout (with uncommitted work, without .venv and caches)."""
    return copy_checkout(tmp_path_factory.mktemp("checkout") / "sentra-scan")


@pytest.fixture(scope="module")
def dist(checkout: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Wheel and sdist built from the snapshot."""
    out = tmp_path_factory.mktemp("dist")
    # --no-isolation: the build backend (hatchling) comes from the dev venv, no download
    run([sys.executable, "-m", "build", "--wheel", "--sdist", "--no-isolation", "--outdir", str(out), str(checkout)])
    return out


@pytest.fixture(scope="module")
def venv(dist: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtualenv with only the wheel and its dependencies installed."""
    root = tmp_path_factory.mktemp("fresh") / "venv"
    run([sys.executable, "-m", "venv", str(root)])
    [wheel] = dist.glob("*.whl")
    env = {
        **os.environ,
        "PIP_CACHE_DIR": str(tmp_path_factory.getbasetemp() / "pip-cache"),
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
    }
    env.pop("PYTHONPATH", None)
    run([str(root / "bin" / "python"), "-m", "pip", "install", "--quiet", str(wheel)], env=env)
    return root


def installed(venv: Path, args: list[str], cwd: Path, **extra: str) -> tuple[int, str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env['PATH']}"
    env.update(extra)
    proc = run([str(venv / "bin" / "sentra"), *args], cwd, check=False, env=env)
    assert_no_leak(proc, TOKEN)
    return proc.returncode, proc.stdout, proc.stderr


def test_wheel_ships_the_default_rules(dist: Path, checkout: Path) -> None:
    [wheel] = dist.glob("*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "github.yaml" in rule_files(checkout)
    assert sorted(n.rsplit("/", 1)[1] for n in names if n.startswith("sentra_scan/_rules/")) == rule_files(checkout)
    assert not any(n.startswith(("tests/", "rules/", "bench/")) for n in names)


def test_sdist_ships_the_hooks(dist: Path) -> None:
    [sdist] = dist.glob("*.tar.gz")
    with tarfile.open(sdist) as tar:
        names = {n.split("/", 1)[1] for n in tar.getnames() if "/" in n}
        shim = tar.getmember(f"{sdist.name.removesuffix('.tar.gz')}/hooks/pre-commit")
    assert {".pre-commit-hooks.yaml", "hooks/pre-commit", "rules/github.yaml", "pyproject.toml"} <= names
    assert shim.mode & 0o111


def test_installed_package_uses_its_shipped_rules(venv: Path, checkout: Path, tmp_path: Path) -> None:
    probe = (
        "import pathlib, sentra_scan\n"
        "from sentra_scan.ruleset import default_rules_dir\n"
        "print(pathlib.Path(sentra_scan.__file__).parent)\n"
        "print(default_rules_dir())\n"
    )
    proc = run([str(venv / "bin" / "python"), "-c", probe], tmp_path)
    package, rules_dir = (Path(line) for line in proc.stdout.split())
    assert package.is_relative_to(venv)  # not the editable checkout
    assert rules_dir == package / "_rules"
    assert sorted(p.name for p in rules_dir.glob("*.yaml")) == rule_files(checkout)

    code, out, _ = installed(venv, ["rules", "list", "--json"], tmp_path)
    assert code == 0
    assert {r["id"] for r in json.loads(out)} == {r.id for r in RuleSet.load(checkout / "rules").rules}


def test_installed_scan_finds_a_canary(venv: Path, tmp_path: Path) -> None:
    (tmp_path / "settings.py").write_text(f'DEBUG = False\nGITHUB_TOKEN = "{TOKEN}"\n')
    (tmp_path / "clean.py").write_text("x = 1\n")
    code, out, _ = installed(venv, ["scan", "settings.py"], tmp_path)
    assert code == 1
    assert "settings.py:2:" in out
    assert "github-pat" in out
    assert TOKEN[:4] + "********" in out
    code, _, _ = installed(venv, ["scan", "clean.py"], tmp_path)
    assert code == 0


def test_installed_hook_blocks_a_commit(venv: Path, tmp_path: Path) -> None:
    repo: Repo = init_repo(tmp_path / "project")
    repo.commit_files({"README.md": "# readme\n"})
    code, _, err = installed(venv, ["install"], repo.path)
    assert code == 0, err
    hook = (repo.path / ".git" / "hooks" / "pre-commit").read_text()
    assert str(venv / "bin" / "sentra") in hook  # the hook calls this installation
    repo.stage("app.py", f'TOKEN = "{TOKEN}"\n')
    proc = run(["git", "commit", "-m", "leak"], repo.path, check=False)
    assert_no_leak(proc, TOKEN)
    assert proc.returncode != 0
    assert "app.py:1:" in proc.stderr
