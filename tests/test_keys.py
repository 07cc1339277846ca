"""Key sources (precedence, validation, fail closed), the envelope of data keys in
keys.json (modes, KDF parameters, no key material), rotation and rewrap."""

from __future__ import annotations

import base64
import json
import multiprocessing
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import keyring.backends.fail
import pytest

from sentra_scan import crypto
from sentra_scan.errors import ExitCode, KeyStateError
from sentra_scan.keys import KEYRING_SERVICE, KEYS_FILE, DataKeys, KeySource, select_source, usable_keyring
from tests.helpers import Repo, sentra
from tests.keyring_memory import MemoryKeyring, PlaintextFileKeyring

KEY_A = base64.b64encode(bytes(range(32))).decode()
KEY_B = base64.b64encode(bytes(range(100, 132))).decode()
PASSWORD = "correct horse battery staple 7f3a"


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    path = tmp_path / "sentra.key"
    path.write_text(KEY_B + "\n", encoding="ascii")
    path.chmod(0o600)
    return path


@pytest.fixture
def memory() -> MemoryKeyring:
    return MemoryKeyring()


@pytest.fixture(autouse=True)
def _no_key_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("SENTRA_KEY", "SENTRA_KEY_FILE", "SENTRA_PASSWORD", "SENTRA_KEY_SOURCE", "SENTRA_NO_RECORD"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")


@pytest.fixture
def fast_kdf(monkeypatch: pytest.MonkeyPatch) -> None:
    """The minimum iteration count, for tests about something else than the default."""
    monkeypatch.setattr(crypto, "PBKDF2_DEFAULT_ITERATIONS", crypto.PBKDF2_MIN_ITERATIONS)


@pytest.fixture
def umask0() -> Iterator[None]:
    """A permissive umask must not make state files readable by others."""
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def envelope(state: Path) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((state / KEYS_FILE).read_text(encoding="utf-8"))
    return doc


# -- precedence -------------------------------------------------------------------------


def test_precedence(key_file: Path, memory: MemoryKeyring) -> None:
    env = {"SENTRA_KEY": KEY_A, "SENTRA_KEY_FILE": str(key_file), "SENTRA_PASSWORD": PASSWORD}
    assert select_source(env, keyring_backend=memory).kind == "key"
    del env["SENTRA_KEY"]
    src = select_source(env, keyring_backend=memory)
    assert (src.kind, src.detail) == ("file", str(key_file))
    del env["SENTRA_KEY_FILE"]
    assert select_source(env, keyring_backend=memory).kind == "password"
    del env["SENTRA_PASSWORD"]
    assert select_source(env, keyring_backend=memory).kind == "keyring"
    assert memory.calls == []  # choosing a source reads nothing and writes nothing


def test_empty_variables_count_as_unset(memory: MemoryKeyring) -> None:
    env = {"SENTRA_KEY": "", "SENTRA_KEY_FILE": "", "SENTRA_PASSWORD": ""}
    assert select_source(env, keyring_backend=memory).kind == "keyring"


def test_forced_source(key_file: Path, memory: MemoryKeyring) -> None:
    env = {"SENTRA_KEY": KEY_A, "SENTRA_KEY_FILE": str(key_file), "SENTRA_PASSWORD": PASSWORD}
    for kind in ("key", "file", "password", "keyring"):
        assert select_source({**env, "SENTRA_KEY_SOURCE": kind}, keyring_backend=memory).kind == kind
    with pytest.raises(KeyStateError, match="not one of key, file, password, keyring"):
        select_source({"SENTRA_KEY_SOURCE": "plaintext"}, keyring_backend=memory)
    with pytest.raises(KeyStateError, match="no SENTRA_PASSWORD and no terminal"):
        select_source({"SENTRA_KEY_SOURCE": "password"}, keyring_backend=memory)


# -- validation -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("not base64!!", "SENTRA_KEY is not valid base64"),
        ("abc", "SENTRA_KEY is not valid base64"),
        (base64.b64encode(b"x" * 16).decode(), "must decode to 32 bytes, got 16"),
        (base64.b64encode(b"x" * 33).decode(), "must decode to 32 bytes, got 33"),
    ],
)
def test_bad_key_is_a_clear_error(value: str, message: str) -> None:
    with pytest.raises(KeyStateError, match=message) as info:
        select_source({"SENTRA_KEY": value})
    assert "openssl rand -base64 32" in info.value.hint
    assert value not in str(info.value) + info.value.hint


def test_bad_key_file_content(tmp_path: Path) -> None:
    path = tmp_path / "k"
    path.write_text("hello\n", encoding="ascii")
    path.chmod(0o600)
    with pytest.raises(KeyStateError, match=f"key file {path} is not valid base64"):
        select_source({"SENTRA_KEY_FILE": str(path)})


def test_missing_key_file(tmp_path: Path) -> None:
    with pytest.raises(KeyStateError, match="cannot read key file"):
        select_source({"SENTRA_KEY_FILE": str(tmp_path / "absent")})


@pytest.mark.parametrize("bits", [0o640, 0o604, 0o660, 0o644, 0o610, 0o601])
def test_key_file_readable_by_others_is_refused(key_file: Path, bits: int) -> None:
    key_file.chmod(bits)
    with pytest.raises(KeyStateError, match=f"readable by others \\(mode {bits:o}\\)") as info:
        select_source({"SENTRA_KEY_FILE": str(key_file)})
    assert info.value.hint == f"chmod 600 {key_file}"
    assert KEY_B not in str(info.value)


@pytest.mark.parametrize("bits", [0o600, 0o400])
def test_private_key_file_is_accepted(key_file: Path, bits: int, tmp_path: Path) -> None:
    key_file.chmod(bits)
    src = select_source({"SENTRA_KEY_FILE": str(key_file)})
    assert src.kind == "file"
    assert src.kek({}, create=False) == base64.b64decode(KEY_B)


# -- no source: fail closed -------------------------------------------------------------


class NullKeyring:
    priority = 1.0

    def get_password(self, service: str, username: str) -> str | None:
        raise AssertionError("must not be read")


class Chain:
    """Like keyring's chainer: usable when one of its backends is."""

    def __init__(self, backends: list[Any]) -> None:
        self.backends = backends


class BrokenProbe:
    @property
    def priority(self) -> float:
        raise RuntimeError("no D-Bus")


@pytest.mark.parametrize(
    "backend",
    [
        keyring.backends.fail.Keyring(),
        PlaintextFileKeyring(),
        NullKeyring(),
        BrokenProbe(),
        Chain([keyring.backends.fail.Keyring(), PlaintextFileKeyring()]),
    ],
    ids=["fail", "keyrings.alt", "null", "probe-raises", "chainer"],
)
def test_no_source_fails_closed_with_a_how_to(backend: Any) -> None:
    with pytest.raises(KeyStateError, match="no key source: the OS credential store is not available") as info:
        select_source({}, keyring_backend=backend)
    for way in ("SENTRA_KEY", "SENTRA_KEY_FILE", "SENTRA_PASSWORD", "credential store"):
        assert way in info.value.hint
    assert info.value.exit_code == ExitCode.KEY


def test_plaintext_keyring_is_never_chosen_even_behind_a_chainer() -> None:
    plain = PlaintextFileKeyring()
    assert not usable_keyring(plain)
    chain = Chain([plain, keyring.backends.fail.Keyring()])
    assert not usable_keyring(chain)
    assert usable_keyring(Chain([plain, MemoryKeyring()]))
    assert plain.calls == []


def test_default_keyring_is_the_keyring_librarys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")
    with pytest.raises(KeyStateError, match=r"not available \(Keyring\)"):
        select_source({})


def test_cli_without_a_source_exits_6_with_the_how_to(repo: Repo) -> None:
    proc = sentra(["key", "status"], repo.path)
    assert proc.returncode == ExitCode.KEY, proc.stderr
    assert "error: no key source" in proc.stderr
    assert "hint: provide a key source" in proc.stderr
    assert "Traceback" not in proc.stderr


# -- the keyring probe only reads -------------------------------------------------------


def test_probe_never_writes(memory: MemoryKeyring) -> None:
    src = select_source({}, keyring_backend=memory)
    assert src.kind == "keyring"
    assert "set_password" not in memory.methods()
    assert memory.entries == {}
    assert src.describe() == "OS credential store (tests.keyring_memory.MemoryKeyring)"


def test_opening_existing_state_never_writes_the_keyring(tmp_path: Path, memory: MemoryKeyring) -> None:
    state = tmp_path / "state"
    DataKeys.open_or_create(state, select_source({}, keyring_backend=memory))
    assert memory.methods() == ["get_password", "set_password"]  # created once
    memory.calls.clear()
    DataKeys.open_or_create(state, select_source({}, keyring_backend=memory), create=True)
    assert memory.methods() == ["get_password"]


def test_keyring_state_keeps_the_kek_out_of_files(tmp_path: Path, memory: MemoryKeyring) -> None:
    state = tmp_path / "state"
    keys = DataKeys.open_or_create(state, select_source({}, keyring_backend=memory))
    env = envelope(state)
    assert env["source"] == "keyring"
    assert env["keyring_user"] == f"kek:{keys.store_id}"
    ((service, user), kek) = next(iter(memory.entries.items()))
    assert (service, user) == (KEYRING_SERVICE, env["keyring_user"])
    raw = (state / KEYS_FILE).read_bytes()
    assert kek.encode() not in raw
    assert base64.b64decode(kek) not in raw
    assert keys.active not in raw
    assert base64.b64encode(keys.active) not in raw


def test_keyring_missing_entry_is_a_clear_error(tmp_path: Path, memory: MemoryKeyring) -> None:
    state = tmp_path / "state"
    DataKeys.open_or_create(state, select_source({}, keyring_backend=memory))
    with pytest.raises(KeyStateError, match="OS credential store has no Sentra key for this repository"):
        DataKeys.open_or_create(state, select_source({}, keyring_backend=MemoryKeyring()))


# -- the envelope on disk ---------------------------------------------------------------


def test_password_envelope(tmp_path: Path, umask0: None) -> None:
    state = tmp_path / "git" / "sentra"
    src = select_source({"SENTRA_PASSWORD": PASSWORD})
    keys = DataKeys.open_or_create(state, src)
    env = envelope(state)
    assert env["version"] == 1
    assert env["source"] == "password"
    assert env["kdf"]["name"] == "pbkdf2-sha256"
    assert env["kdf"]["iterations"] == 600_000
    assert len(base64.b64decode(env["kdf"]["salt"])) == 16
    raw = (state / KEYS_FILE).read_bytes()
    assert PASSWORD.encode() not in raw
    assert keys.active not in raw
    assert mode(state) == 0o700
    assert mode(state / KEYS_FILE) == 0o600
    # Same password: the same data key; another password: a clear error.
    again = DataKeys.open_or_create(state, select_source({"SENTRA_PASSWORD": PASSWORD}), create=False)
    assert again.active == keys.active
    with pytest.raises(KeyStateError, match=r"cannot unlock the keys in .*wrong key or password"):
        DataKeys.open_or_create(state, select_source({"SENTRA_PASSWORD": PASSWORD + "x"}), create=False)


def test_two_stores_never_share_a_salt(tmp_path: Path, fast_kdf: None) -> None:
    salts = set()
    for i in range(2):
        DataKeys.open_or_create(tmp_path / str(i), select_source({"SENTRA_PASSWORD": PASSWORD}))
        salts.add(envelope(tmp_path / str(i))["kdf"]["salt"])
    assert len(salts) == 2


def test_lowered_iteration_count_is_refused(tmp_path: Path, fast_kdf: None) -> None:
    state = tmp_path / "state"
    DataKeys.open_or_create(state, select_source({"SENTRA_PASSWORD": PASSWORD}))
    env = envelope(state)
    env["kdf"]["iterations"] = 1000
    (state / KEYS_FILE).write_text(json.dumps(env), encoding="utf-8")
    with pytest.raises(KeyStateError, match="below the minimum"):
        DataKeys.open_or_create(state, select_source({"SENTRA_PASSWORD": PASSWORD}), create=False)


def test_state_files_are_private_through_the_cli(repo: Repo, umask0: None) -> None:
    repo.commit_files({"a.txt": "hello\n"})
    proc = sentra(["audit"], repo.path, env={**os.environ, "SENTRA_KEY": KEY_A})
    assert proc.returncode == 0, proc.stderr
    state = repo.path / ".git" / "sentra"
    assert mode(state) == 0o700
    assert {p.name: mode(p) for p in state.iterdir()} == {"keys.json": 0o600, "ledger.db": 0o600}


def test_keys_json_holds_no_key_material(tmp_path: Path) -> None:
    state = tmp_path / "state"
    keys = DataKeys.open_or_create(state, select_source({"SENTRA_KEY": KEY_A}))
    raw = (state / KEYS_FILE).read_bytes()
    for secret in (KEY_A.encode(), base64.b64decode(KEY_A), keys.active, base64.b64encode(keys.active)):
        assert secret not in raw
    env = envelope(state)
    assert set(env) == {"version", "store_id", "source", "keys", "active"}
    assert list(env["keys"]) == [env["active"]] == [crypto.key_id(keys.active).hex()]


def test_missing_or_corrupt_envelope(tmp_path: Path) -> None:
    src = select_source({"SENTRA_KEY": KEY_A})
    with pytest.raises(KeyStateError, match="no encrypted state yet"):
        DataKeys.open_or_create(tmp_path / "none", src, create=False)
    state = tmp_path / "state"
    DataKeys.open_or_create(state, src)
    (state / KEYS_FILE).write_text("{not json", encoding="utf-8")
    with pytest.raises(KeyStateError, match="unreadable or corrupt"):
        DataKeys.open_or_create(state, src)
    (state / KEYS_FILE).write_text(json.dumps({"version": 99}), encoding="utf-8")
    with pytest.raises(KeyStateError, match="unsupported format version 99"):
        DataKeys.open_or_create(state, src)


def test_wrong_key_is_a_clear_error(tmp_path: Path) -> None:
    state = tmp_path / "state"
    DataKeys.open_or_create(state, select_source({"SENTRA_KEY": KEY_A}))
    before = (state / KEYS_FILE).read_bytes()
    with pytest.raises(KeyStateError, match=r"SENTRA_KEY .* cannot unlock the keys") as info:
        DataKeys.open_or_create(state, select_source({"SENTRA_KEY": KEY_B}))
    assert "sentra key status" in info.value.hint
    assert (state / KEYS_FILE).read_bytes() == before


def test_a_key_file_opens_what_sentra_key_created(tmp_path: Path, key_file: Path) -> None:
    state = tmp_path / "state"
    key_file.write_text(KEY_A, encoding="ascii")
    created = DataKeys.open_or_create(state, select_source({"SENTRA_KEY": KEY_A}))
    opened = DataKeys.open_or_create(state, select_source({"SENTRA_KEY_FILE": str(key_file)}), create=False)
    assert opened.active == created.active


@pytest.mark.parametrize(
    ("created_with", "opened_with", "message"),
    [
        ({"SENTRA_KEY": KEY_A}, {"SENTRA_PASSWORD": PASSWORD}, "wrapped by a key .*not by password"),
        ({"SENTRA_PASSWORD": PASSWORD}, {"SENTRA_KEY": KEY_A}, "wrapped by a password .*not by SENTRA_KEY"),
        ({"SENTRA_KEY": KEY_A}, {}, "wrapped by a key .*not by OS credential store"),
    ],
)
def test_another_kind_of_source_says_which_one_is_needed(
    tmp_path: Path,
    memory: MemoryKeyring,
    fast_kdf: None,
    created_with: dict[str, str],
    opened_with: dict[str, str],
    message: str,
) -> None:
    state = tmp_path / "state"
    DataKeys.open_or_create(state, select_source(created_with))
    with pytest.raises(KeyStateError, match=message):
        DataKeys.open_or_create(state, select_source(opened_with, keyring_backend=memory), create=False)
    assert memory.calls == []


# -- repr never shows key material ------------------------------------------------------


def test_repr_never_shows_the_secret(key_file: Path, memory: MemoryKeyring) -> None:
    sources = [
        select_source({"SENTRA_KEY": KEY_A}),
        select_source({"SENTRA_KEY_FILE": str(key_file)}),
        select_source({"SENTRA_PASSWORD": PASSWORD}),
        KeySource("key", "", KEY_A),
    ]
    for src in sources:
        for text in (repr(src), str(src), f"{src!r}", src.describe(), repr([src]), repr({"s": src})):
            assert KEY_A not in text
            assert KEY_B not in text
            assert PASSWORD not in text
    assert repr(sources[0]) == "KeySource('key', '')"


# -- rotation and rewrap ----------------------------------------------------------------


def test_add_key_then_drop_inactive(tmp_path: Path) -> None:
    state = tmp_path / "state"
    src = select_source({"SENTRA_KEY": KEY_A})
    keys = DataKeys.open_or_create(state, src)
    old_id = keys.active_id
    old_blob = keys.seal(b"row", purpose="ledger-scan", name="r1")
    new_id = keys.add_key()
    assert new_id != old_id
    reopened = DataKeys.open_or_create(state, src, create=False)
    assert set(reopened.keys) == {old_id, new_id}
    assert reopened.active_id == new_id
    assert reopened.open(old_blob, purpose="ledger-scan", name="r1") == b"row"
    new_blob = reopened.seal(b"row", purpose="ledger-scan", name="r1")
    assert crypto.sealed_key_id(new_blob).hex() == new_id
    reopened.drop_inactive()
    final = DataKeys.open_or_create(state, src, create=False)
    assert list(final.keys) == [new_id]
    assert final.open(new_blob, purpose="ledger-scan", name="r1") == b"row"
    with pytest.raises(crypto.DecryptError, match="a key this repository does not hold"):
        final.open(old_blob, purpose="ledger-scan", name="r1")


def test_rewrap_keeps_the_data_keys(tmp_path: Path, memory: MemoryKeyring, key_file: Path, fast_kdf: None) -> None:
    state = tmp_path / "state"
    key_src = select_source({"SENTRA_KEY": KEY_A})
    keys = DataKeys.open_or_create(state, key_src)
    dek, blob = keys.active, keys.seal(b"payload", purpose="p", name="n")

    def opens(source: KeySource) -> bytes:
        k = DataKeys.open_or_create(state, source, create=False)
        assert k.open(blob, purpose="p", name="n") == b"payload"
        return k.active

    pw_src = select_source({"SENTRA_PASSWORD": PASSWORD})
    keys.rewrap(pw_src)
    assert opens(pw_src) == dek
    assert envelope(state)["kdf"]["iterations"] == crypto.PBKDF2_MIN_ITERATIONS
    with pytest.raises(KeyStateError):
        DataKeys.open_or_create(state, key_src, create=False)

    ring_src = select_source({}, keyring_backend=memory)
    DataKeys.open_or_create(state, pw_src, create=False).rewrap(ring_src)
    assert opens(ring_src) == dek
    first_user = envelope(state)["keyring_user"]
    assert "kdf" not in envelope(state)
    # keyring -> keyring (a new KEK): the old entry is removed from the credential store.
    DataKeys.open_or_create(state, ring_src, create=False).rewrap(ring_src)
    assert opens(ring_src) == dek
    assert [u for (_, u) in memory.entries] == [envelope(state)["keyring_user"]] != [first_user]

    file_src = select_source({"SENTRA_KEY_FILE": str(key_file)})
    DataKeys.open_or_create(state, ring_src, create=False).rewrap(file_src)
    assert opens(file_src) == dek
    assert "keyring_user" not in envelope(state)
    assert set(envelope(state)) == {"version", "store_id", "source", "keys", "active"}


# -- two first scans at once ------------------------------------------------------------


def _create(state: str, barrier: Any, out: Any) -> None:
    barrier.wait()
    try:
        keys = DataKeys.open_or_create(Path(state), select_source({"SENTRA_KEY": KEY_A}))
        out.put(keys.active_id)
    except KeyStateError as exc:
        out.put(f"error: {exc.message}")


def test_concurrent_creation_agrees_on_one_data_key(tmp_path: Path) -> None:
    """Two processes creating the state at the same moment must end with one envelope that
    both use (before the fix the later rename won and the first's ledger rows were lost)."""
    ctx = multiprocessing.get_context("fork")
    for round_ in range(4):
        state = tmp_path / f"s{round_}"
        barrier, out = ctx.Barrier(2), ctx.Queue()
        procs = [ctx.Process(target=_create, args=(str(state), barrier, out)) for _ in range(2)]
        for p in procs:
            p.start()
        ids = {out.get(timeout=30) for _ in procs}
        for p in procs:
            p.join(30)
        final = DataKeys.open_or_create(state, select_source({"SENTRA_KEY": KEY_A}), create=False)
        assert ids == {final.active_id}
        assert [p.name for p in state.iterdir()] == [KEYS_FILE]  # no temp file left behind
