"""The secret store through the CLI: `sentra secrets`, the audit log, `sentra run`,
`sentra inject` and the environment policy. A wrong key, a tampered store, an edited log or
a dev run reaching for a prod entry each end in a clear error (exit 6 or 2, no traceback)
and lose nothing: the store file is unchanged. No value ever reaches the output or the log."""

from __future__ import annotations

import base64
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from sentra_scan.ruleset.examples import expand
from tests.helpers import Repo, sentra

VALUE = expand("{{alnum:40}}", "store-dev-value")
PROD_VALUE = expand("{{alnum:40}}", "store-prod-value")
PRINT_ENV = "import os, sys; print(os.environ.get(sys.argv[1], '<unset>'))"


@pytest.fixture(autouse=True)
def key(monkeypatch: pytest.MonkeyPatch) -> str:
    value = base64.b64encode(os.urandom(32)).decode()
    monkeypatch.setenv("SENTRA_KEY", value)
    return value


def put(repo: Repo, path: str, value: str) -> None:
    proc = sentra(["secrets", "set", path, "--value-stdin"], repo.path, input=value.encode())
    assert proc.returncode == 0, proc.stderr
    assert value not in proc.stdout + proc.stderr


@pytest.fixture
def filled(repo: Repo) -> Repo:
    put(repo, "dev/API_TOKEN", VALUE)
    put(repo, "prod/DB_PASSWORD", PROD_VALUE)
    return repo


def store_file(repo: Repo) -> Path:
    return repo.path / ".sentra" / "secrets.enc"


def assert_clear_error(proc: subprocess.CompletedProcess[str], code: int) -> None:
    assert proc.returncode == code, proc.stderr
    assert any(line.startswith("error: ") for line in proc.stderr.splitlines()), proc.stderr
    assert "Traceback" not in proc.stderr
    for value in (VALUE, PROD_VALUE):
        assert value not in proc.stderr + proc.stdout


def env_of(repo: Repo, name: str, *env: str) -> str:
    proc = sentra(["run", *env, "--", sys.executable, "-c", PRINT_ENV, name], repo.path)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


# --- the basics -----------------------------------------------------------------------------


def test_values_are_sealed_private_and_out_of_git(filled: Repo) -> None:
    raw = store_file(filled).read_bytes()
    assert VALUE.encode() not in raw
    assert PROD_VALUE.encode() not in raw
    assert raw.startswith(b"# sentra store v1 ")
    assert stat.S_IMODE(store_file(filled).stat().st_mode) == 0o600
    assert stat.S_IMODE(store_file(filled).parent.stat().st_mode) == 0o700
    assert filled.git("status", "--porcelain", "--ignored=no") == ""  # .sentra/ is excluded
    assert sentra(["secrets", "list"], filled.path).stdout.split() == ["dev/API_TOKEN", "prod/DB_PASSWORD"]


def test_get_never_prints_a_value_to_a_pipe(filled: Repo) -> None:
    proc = sentra(["secrets", "get", "dev/API_TOKEN"], filled.path)
    assert proc.returncode == 0
    assert "40 characters" in proc.stdout
    assert_clear_error(sentra(["secrets", "get", "dev/API_TOKEN", "--reveal"], filled.path), 2)


def test_remove_and_missing_entries(filled: Repo) -> None:
    assert sentra(["secrets", "rm", "dev/API_TOKEN"], filled.path).returncode == 0
    assert_clear_error(sentra(["secrets", "get", "dev/API_TOKEN"], filled.path), 2)
    assert_clear_error(sentra(["secrets", "rm", "dev/API_TOKEN"], filled.path), 2)
    assert_clear_error(sentra(["secrets", "set", "NO_ENV", "--value-stdin"], filled.path, input=b"x"), 2)


def test_import_a_dotenv_file(repo: Repo, tmp_path: Path) -> None:
    env_file = tmp_path / "prod.env"
    env_file.write_text(f"# comment\nexport API_TOKEN='{VALUE}'\nDEBUG=0  # inline\n", encoding="utf-8")
    proc = sentra(["secrets", "import", str(env_file), "--env", "staging"], repo.path)
    assert proc.returncode == 0, proc.stderr
    assert "2 entries" in proc.stdout
    assert env_of(repo, "API_TOKEN", "--env", "staging") == VALUE
    assert env_of(repo, "DEBUG", "--env", "staging") == "0"


# --- the audit log ------------------------------------------------------------------------------


def test_every_mutation_is_audited_without_values(filled: Repo, monkeypatch: pytest.MonkeyPatch) -> None:
    # The actor is git's author identity, as for a commit: GIT_AUTHOR_* over user.* config.
    filled.git("config", "user.name", "Config Name")
    monkeypatch.setenv("GIT_AUTHOR_NAME", "Ann Actor")
    monkeypatch.setenv("GIT_AUTHOR_EMAIL", "ann@example.test")
    put(filled, "dev/API_TOKEN", VALUE + "2")
    assert sentra(["secrets", "rm", "prod/DB_PASSWORD"], filled.path).returncode == 0
    log = (filled.path / ".sentra" / "audit.log").read_text(encoding="utf-8")
    records = [json.loads(line) for line in log.splitlines()]
    assert [(r["action"], r["path"]) for r in records] == [
        ("set", "dev/API_TOKEN"),
        ("set", "prod/DB_PASSWORD"),
        ("set", "dev/API_TOKEN"),
        ("rm", "prod/DB_PASSWORD"),
    ]
    assert records[-1]["actor"] == "Ann Actor <ann@example.test>"
    assert VALUE not in log
    assert PROD_VALUE not in log
    verified = sentra(["secrets", "audit", "--verify"], filled.path)
    assert verified.returncode == 0
    assert "4 entries" in verified.stdout
    listed = sentra(["secrets", "audit"], filled.path)
    assert "rm  prod/DB_PASSWORD" in listed.stdout


@pytest.mark.parametrize("damage", ["edit", "delete-line", "truncate", "remove-file"])
def test_a_damaged_audit_log_fails_verification_and_refuses_mutations(filled: Repo, damage: str) -> None:
    log = filled.path / ".sentra" / "audit.log"
    lines = log.read_text(encoding="utf-8").splitlines(keepends=True)
    if damage == "edit":
        log.write_text(lines[0].replace('"set"', '"rm"') + "".join(lines[1:]), encoding="utf-8")
    elif damage == "delete-line":
        log.write_text(lines[1], encoding="utf-8")
    elif damage == "truncate":
        log.write_text(lines[0], encoding="utf-8")
    else:
        log.unlink()
    before = store_file(filled).read_bytes()
    assert_clear_error(sentra(["secrets", "audit", "--verify"], filled.path), 6)
    assert_clear_error(sentra(["secrets", "set", "dev/NEW", "--value-stdin"], filled.path, input=b"v"), 6)
    assert_clear_error(sentra(["secrets", "rm", "dev/API_TOKEN"], filled.path), 6)
    assert store_file(filled).read_bytes() == before
    assert env_of(filled, "API_TOKEN") == VALUE  # reading still works: nothing is lost


# --- keys and tampering -------------------------------------------------------------------------


def test_a_wrong_key_is_a_clear_error_and_loses_nothing(
    filled: Repo, monkeypatch: pytest.MonkeyPatch, key: str
) -> None:
    before = store_file(filled).read_bytes()
    monkeypatch.setenv("SENTRA_KEY", base64.b64encode(os.urandom(32)).decode())
    for args in (
        ["secrets", "list"],
        ["secrets", "get", "dev/API_TOKEN"],
        ["run", "--", "true"],
        ["secrets", "rm", "dev/API_TOKEN"],
    ):
        proc = sentra(args, filled.path)
        assert_clear_error(proc, 6)
        assert "wrong key" in proc.stderr
    assert_clear_error(sentra(["secrets", "set", "dev/X", "--value-stdin"], filled.path, input=b"v"), 6)
    assert store_file(filled).read_bytes() == before
    monkeypatch.setenv("SENTRA_KEY", key)
    assert env_of(filled, "API_TOKEN") == VALUE


def test_no_key_source_says_how_to_provide_one(filled: Repo, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SENTRA_KEY")
    monkeypatch.setenv("SENTRA_KEY_SOURCE", "key")
    proc = sentra(["run", "--", "true"], filled.path)
    assert proc.returncode == 6
    assert "Traceback" not in proc.stderr


def tamper(path: Path, entry: str) -> None:
    """Flip one byte of an entry's sealed value (the base64 stays valid)."""
    lines = path.read_text(encoding="ascii").splitlines()
    for i, line in enumerate(lines):
        name, _, value = line.partition(" ")
        if name == entry:
            blob = bytearray(base64.b64decode(value))
            blob[-1] ^= 0x01
            lines[i] = f"{name} {base64.b64encode(bytes(blob)).decode()}"
    path.write_text("\n".join(lines) + "\n", encoding="ascii")


def test_a_tampered_entry_fails_authentication(filled: Repo) -> None:
    tamper(store_file(filled), "dev/API_TOKEN")
    before = store_file(filled).read_bytes()
    for args in (["secrets", "get", "dev/API_TOKEN"], ["run", "--", "true"]):
        proc = sentra(args, filled.path)
        assert_clear_error(proc, 6)
        assert "failed authentication" in proc.stderr
    assert env_of(filled, "DB_PASSWORD", "--env", "prod") == PROD_VALUE  # the rest still opens
    assert store_file(filled).read_bytes() == before


def test_swapped_ciphertexts_are_refused(filled: Repo) -> None:
    """Each value is bound to its entry path: moving a ciphertext to another name fails."""
    path = store_file(filled)
    lines = path.read_text(encoding="ascii").splitlines()
    sealed = {ln.split(" ")[0]: ln.split(" ")[1] for ln in lines[1:]}
    swapped = [f"dev/API_TOKEN {sealed['prod/DB_PASSWORD']}" if ln.startswith("dev/API_TOKEN ") else ln for ln in lines]
    path.write_text("\n".join(swapped) + "\n", encoding="ascii")
    assert_clear_error(sentra(["secrets", "get", "dev/API_TOKEN"], filled.path), 6)


@pytest.mark.parametrize(
    "corrupt",
    [
        lambda text: text.replace("# sentra store v1", "# other store v1", 1),
        lambda text: text + "dev/BROKEN not-base64!\n",
        lambda text: "",
    ],
    ids=["header", "bad-line", "empty"],
)
def test_a_corrupt_store_file_is_a_clear_error(filled: Repo, corrupt: object) -> None:
    path = store_file(filled)
    path.write_text(corrupt(path.read_text(encoding="ascii")), encoding="ascii")  # type: ignore[operator]
    before = path.read_bytes()
    for args in (["secrets", "list"], ["run", "--", "true"]):
        assert_clear_error(sentra(args, filled.path), 6)
    assert_clear_error(sentra(["secrets", "set", "dev/X", "--value-stdin"], filled.path, input=b"v"), 6)
    assert path.read_bytes() == before


# --- policy, run and inject -----------------------------------------------------------------------


def test_a_dev_run_never_sees_prod_entries(filled: Repo) -> None:
    assert env_of(filled, "API_TOKEN") == VALUE  # the default environment: dev
    assert env_of(filled, "DB_PASSWORD") == "<unset>"
    assert env_of(filled, "DB_PASSWORD", "--env", "dev") == "<unset>"
    assert env_of(filled, "DB_PASSWORD", "--env", "prod") == PROD_VALUE
    assert env_of(filled, "API_TOKEN", "--env", "prod") == "<unset>"


def test_inject_in_dev_refuses_a_prod_reference(filled: Repo, tmp_path: Path) -> None:
    template = tmp_path / "config.yaml"
    template.write_text("db:\n  password: sentra://env/DB_PASSWORD\n", encoding="utf-8")
    out = tmp_path / "rendered.yaml"
    proc = sentra(["inject", "--env", "dev", "-i", str(template), "-o", str(out)], filled.path)
    assert_clear_error(proc, 2)
    assert "DB_PASSWORD" in proc.stderr
    assert not out.exists()
    proc = sentra(["inject", "--env", "prod", "-i", str(template), "-o", str(out)], filled.path)
    assert proc.returncode == 0, proc.stderr
    assert out.read_text(encoding="utf-8") == f"db:\n  password: {PROD_VALUE}\n"
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert PROD_VALUE not in proc.stdout + proc.stderr


def test_environments_from_the_config(repo: Repo) -> None:
    repo.write(".sentra.yaml", "environments:\n  ci: [ci/, shared/]\n  dev: [dev/]\ndefault-env: ci\n")
    put(repo, "shared/API_TOKEN", VALUE)
    put(repo, "dev/ONLY_DEV", "x")
    assert env_of(repo, "API_TOKEN") == VALUE
    assert env_of(repo, "ONLY_DEV") == "<unset>"
    assert_clear_error(sentra(["run", "--env", "prod", "--", "true"], repo.path), 2)


def test_run_passes_the_exit_code_and_reports_a_missing_command(filled: Repo) -> None:
    assert sentra(["run", "--", sys.executable, "-c", "raise SystemExit(7)"], filled.path).returncode == 7
    assert_clear_error(sentra(["run", "--", "no-such-command-here"], filled.path), 2)
    assert_clear_error(sentra(["run"], filled.path), 2)


def test_outside_a_repository(tmp_path: Path) -> None:
    assert_clear_error(sentra(["secrets", "list"], tmp_path), 2)
