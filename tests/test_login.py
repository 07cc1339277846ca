"""`sentra login --oidc`, `whoami`, `logout` as real processes against a real OpenID provider
(panva's oidc-provider on 127.0.0.1, tests/oidc/provider.js), with the tokens in the real
Secret Service (gnome-keyring on a private D-Bus). The browser is driven with HTTP requests.

Canary: no access token, refresh token or authorization code ever reaches the output of
the CLI or of the provider."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import httpx
import pytest

from sentra_scan.auth import oauth
from sentra_scan.auth.tokens import SERVICE
from sentra_scan.auth.verify import TokenError
from tests.oidc.harness import (
    AUDIENCE,
    CLIENT_ID,
    ROLE,
    BrowserResult,
    KeySet,
    OidcProvider,
    drive_login,
    files_containing,
    keyring_clear,
    keyring_items,
    keyring_set,
    oidc_provider,
    secret_service,
    sentra_cmd,
    stop,
    wait_for_url,
)

ALICE_SUB = "6f1c2d3e-0000-4000-8000-00000000a11c"
PASSWORD = "correct horse battery staple"
ACCOUNTS = {"alice": {"password": PASSWORD, "sub": ALICE_SUB}}
WAIT_S = 30


@pytest.fixture(scope="module")
def provider(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OidcProvider]:
    with oidc_provider(tmp_path_factory.mktemp("oidc"), KeySet(), ACCOUNTS) as p:
        yield p


@pytest.fixture(scope="module")
def keyring_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    with secret_service(tmp_path_factory.mktemp("keyring")) as env:
        yield env


@dataclass
class Cli:
    env: dict[str, str]
    workdir: Path
    keyring: dict[str, str]
    outputs: list[str] = field(default_factory=list)  # everything the CLI printed, for the canary

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            sentra_cmd(*args), cwd=self.workdir, env=self.env, capture_output=True, text=True, timeout=WAIT_S
        )
        self.outputs += [proc.stdout, proc.stderr]
        return proc

    def tokens(self, issuer: str) -> tuple[str | None, str | None]:
        """The stored access and refresh tokens, joined from their chunks."""
        items = keyring_items(self.keyring, SERVICE)

        def join(kind: str) -> str | None:
            n = items.get(f"{issuer}|{kind}:n")
            return "".join(items[f"{issuer}|{kind}:{i}"] for i in range(int(n))) if n else None

        return join("access"), join("refresh")


@pytest.fixture
def cli(keyring_env: dict[str, str], tmp_path: Path) -> Cli:
    keyring_clear(keyring_env, SERVICE)
    env = {
        **os.environ,  # the hermetic HOME and XDG dirs of this test
        "DBUS_SESSION_BUS_ADDRESS": keyring_env["DBUS_SESSION_BUS_ADDRESS"],
        "PYTHON_KEYRING_BACKEND": keyring_env["PYTHON_KEYRING_BACKEND"],
        "SENTRA_ALLOW_HTTP_LOOPBACK": "1",
    }
    workdir = tmp_path / "cwd"
    workdir.mkdir()
    return Cli(env, workdir, keyring_env)


def login_args(provider: OidcProvider, *extra: str, audience: str = AUDIENCE) -> list[str]:
    return [
        "login",
        "--oidc",
        "--provider",
        provider.issuer,
        "--client-id",
        CLIENT_ID,
        "--audience",
        audience,
        "--role",
        ROLE,
        "--no-browser",
        *extra,
    ]


def start_login(
    cli: Cli, provider: OidcProvider, *extra: str, audience: str = AUDIENCE
) -> tuple[subprocess.Popen[bytes], Path, Path]:
    out, err = cli.workdir / "login.out", cli.workdir / "login.err"
    args = login_args(provider, *extra, audience=audience)
    with open(out, "wb") as o, open(err, "wb") as e:
        proc = subprocess.Popen(sentra_cmd(*args), cwd=cli.workdir, env=cli.env, stdout=o, stderr=e)
    return proc, out, err


def finish(cli: Cli, proc: subprocess.Popen[bytes], out: Path, err: Path) -> subprocess.CompletedProcess[str]:
    try:
        proc.wait(WAIT_S)
    finally:
        stop(proc)
    result = subprocess.CompletedProcess(proc.args, proc.returncode, out.read_text(), err.read_text())
    cli.outputs += [result.stdout, result.stderr]
    return result


def login(cli: Cli, provider: OidcProvider, *extra: str) -> tuple[subprocess.CompletedProcess[str], BrowserResult]:
    proc, out, err = start_login(cli, provider, *extra, "--timeout", str(WAIT_S))
    browser = drive_login(wait_for_url(err, proc), "alice", PASSWORD)
    return finish(cli, proc, out, err), browser


def code_of(browser: BrowserResult) -> str:
    return parse_qs(urlsplit(browser.callback_url).query)["code"][0]


def assert_no_canary(cli: Cli, provider: OidcProvider, *canaries: str | None) -> None:
    printed = "\n".join([*cli.outputs, provider.output()])
    for canary in canaries:
        if canary:
            assert canary not in printed, "a token or code reached the output"


def forge_expired(provider: OidcProvider) -> str:
    """An access token the provider's key really signed, whose time is over."""
    return provider.sign(ALICE_SUB, ttl=-120)


def store_access(cli: Cli, provider: OidcProvider, token: str) -> None:
    """Replace the stored access token (one chunk: these tokens are shorter than a chunk)."""
    assert len(token) <= 1000
    keyring_set(cli.keyring, SERVICE, f"{provider.issuer}|access:0", token)
    keyring_set(cli.keyring, SERVICE, f"{provider.issuer}|access:n", "1")


def test_login_whoami_refresh_with_rotation_logout(cli: Cli, provider: OidcProvider, hermetic_env: Path) -> None:
    result, browser = login(cli, provider)
    assert result.returncode == 0, result.stderr
    assert f"logged in as {ALICE_SUB} ({provider.issuer})" in result.stdout
    assert browser.response is not None
    assert browser.response.status_code == 200
    assert "login complete" in browser.response.text
    code = code_of(browser)

    access, refresh = cli.tokens(provider.issuer)
    assert access
    assert refresh
    assert access.count(".") == 2  # a JWT, verified by the CLI before it was stored
    # The tokens are only in the credential store: the provider settings file holds none.
    auth_json = hermetic_env / ".config" / "sentra" / "auth.json"
    assert json.loads(auth_json.read_text())["provider"]["issuer"] == provider.issuer
    assert auth_json.stat().st_mode & 0o777 == 0o600
    assert auth_json.parent.stat().st_mode & 0o777 == 0o700
    for token in (access, refresh, code):
        assert files_containing(hermetic_env, token.encode()) == []
        assert files_containing(cli.workdir, token.encode()) == []

    # The code was for one use only, and it is bound to the PKCE verifier.
    replay = httpx.post(
        provider.token_url,
        data={
            "grant_type": "authorization_code",
            "code": code,
            "client_id": CLIENT_ID,
            "redirect_uri": "http://127.0.0.1/callback",
            "code_verifier": "x" * 64,
        },
        timeout=10,
    )
    assert replay.status_code == 400
    assert replay.json()["error"] == "invalid_grant"

    who = cli.run("whoami")
    assert who.returncode == 0, who.stderr
    assert f"subject: {ALICE_SUB}" in who.stdout
    assert f"issuer: {provider.issuer}" in who.stdout
    assert "expires: " in who.stdout
    assert cli.tokens(provider.issuer) == (access, refresh)  # valid: no refresh

    # The access token has expired: whoami refreshes, and the provider rotates the refresh token.
    expired = forge_expired(provider)
    store_access(cli, provider, expired)
    who = cli.run("whoami")
    assert who.returncode == 0, who.stderr
    assert f"subject: {ALICE_SUB}" in who.stdout
    new_access, new_refresh = cli.tokens(provider.issuer)
    assert new_access
    assert new_refresh
    assert new_access not in (access, expired)
    assert new_refresh != refresh
    old = provider.refresh(refresh)  # the old refresh token is dead at the provider
    assert old.status_code == 400
    assert old.json()["error"] == "invalid_grant"

    out = cli.run("logout")
    assert out.returncode == 0, out.stderr
    assert "session revoked and deleted" in out.stdout
    assert keyring_items(cli.keyring, SERVICE) == {}
    assert not auth_json.exists()
    who = cli.run("whoami")
    assert who.returncode == 6
    assert "not logged in" in who.stderr
    assert_no_canary(cli, provider, access, refresh, code, new_access, new_refresh, expired)


def test_logout_revokes_the_refresh_token_even_with_an_expired_access_token(cli: Cli, provider: OidcProvider) -> None:
    result, browser = login(cli, provider)
    assert result.returncode == 0, result.stderr
    access, refresh = cli.tokens(provider.issuer)
    assert refresh
    store_access(cli, provider, forge_expired(provider))

    out = cli.run("logout")
    assert out.returncode == 0, out.stderr
    assert "session revoked and deleted" in out.stdout
    assert "warning" not in out.stderr
    dead = provider.refresh(refresh)
    assert dead.status_code == 400
    assert dead.json()["error"] == "invalid_grant"
    assert keyring_items(cli.keyring, SERVICE) == {}
    assert "not logged in" in cli.run("whoami").stderr
    assert "not logged in" in cli.run("logout").stdout
    assert_no_canary(cli, provider, access, refresh, code_of(browser))


def _tamper(url: str, **params: str) -> str:
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    query.update(params)
    return urlunsplit(parts._replace(query=urlencode(query)))


@pytest.mark.parametrize(
    ("param", "value", "message"),
    [
        ("state", "forged-état", "state does not match"),  # non-ASCII too: refused, not a crash
        ("iss", "http://127.0.0.1:1", "names another issuer"),
    ],
    ids=["wrong-state", "wrong-iss"],
)
def test_a_forged_callback_is_refused_and_nothing_is_stored(
    cli: Cli, provider: OidcProvider, hermetic_env: Path, param: str, value: str, message: str
) -> None:
    proc, out, err = start_login(cli, provider, "--timeout", str(WAIT_S))
    browser = drive_login(wait_for_url(err, proc), "alice", PASSWORD, deliver=False)
    forged = httpx.get(_tamper(browser.callback_url, **{param: value}), timeout=10)
    assert forged.status_code == 400
    assert "login failed" in forged.text
    result = finish(cli, proc, out, err)
    assert result.returncode == 6, result.stderr
    assert message in result.stderr
    assert "nothing stored" in result.stderr
    assert "internal error" not in result.stderr
    assert keyring_items(cli.keyring, SERVICE) == {}
    assert not (hermetic_env / ".config" / "sentra" / "auth.json").exists()
    # The listener took one answer and closed: the genuine one comes too late.
    with pytest.raises(httpx.TransportError):
        httpx.get(browser.callback_url, timeout=3)
    assert_no_canary(cli, provider, code_of(browser))


def test_a_token_that_fails_verification_is_not_stored(cli: Cli, provider: OidcProvider) -> None:
    """The provider's token is real, but not for this audience: refused before it is stored."""
    proc, out, err = start_login(cli, provider, "--timeout", str(WAIT_S), audience="another-api")
    browser = drive_login(wait_for_url(err, proc), "alice", PASSWORD)
    result = finish(cli, proc, out, err)
    assert result.returncode == 6
    assert "token audience does not match" in result.stderr
    assert keyring_items(cli.keyring, SERVICE) == {}
    assert_no_canary(cli, provider, code_of(browser))


def test_login_times_out_with_a_clear_message(cli: Cli, provider: OidcProvider) -> None:
    started = time.monotonic()
    proc, out, err = start_login(cli, provider, "--timeout", "1")
    wait_for_url(err, proc)
    result = finish(cli, proc, out, err)
    assert time.monotonic() - started < 15
    assert result.returncode == 6
    assert "no answer from the browser within 1s; run 'sentra login' again" in result.stderr
    assert "internal error" not in result.stderr
    assert keyring_items(cli.keyring, SERVICE) == {}


def test_login_denied_by_the_user(cli: Cli, provider: OidcProvider) -> None:
    proc, out, err = start_login(cli, provider, "--timeout", str(WAIT_S))
    url = wait_for_url(err, proc)
    with httpx.Client(timeout=5) as browser:
        page = browser.get(url, follow_redirects=True)
        page = browser.post(
            page.url.join(page.text.split('action="')[1].split('"')[0]),
            data={"login": "alice", "password": PASSWORD},
            follow_redirects=True,
        )
        abort = page.text.split('action="')[2].split('"')[0]
        assert abort.endswith("/abort")
        back = browser.post(page.url.join(abort), follow_redirects=True)
    assert back.status_code == 400
    result = finish(cli, proc, out, err)
    assert result.returncode == 6
    assert "the provider refused the login: access_denied" in result.stderr
    assert keyring_items(cli.keyring, SERVICE) == {}


def test_discovery_refuses_plain_http_unless_loopback_is_allowed(provider: OidcProvider) -> None:
    with pytest.raises(TokenError, match="HTTPS is required"):
        oauth.discover(provider.issuer, client_id=CLIENT_ID)
    found = oauth.discover(provider.issuer, client_id=CLIENT_ID, audience=AUDIENCE, allow_http_loopback=True)
    assert found.token_url == provider.token_url
    assert found.revocation_url == provider.issuer + "/token/revocation"
    with pytest.raises(TokenError, match="another issuer"):
        oauth.discover(provider.issuer + "/", client_id=CLIENT_ID, allow_http_loopback=True, fetch=lambda _u: {})
    with pytest.raises(TokenError, match="HTTPS is required"):
        oauth.discover("http://sso.example.test", client_id=CLIENT_ID, allow_http_loopback=True)


def test_no_credential_store_no_login(provider: OidcProvider, tmp_path: Path) -> None:
    """Without a usable credential store, login refuses before any browser step."""
    env = {**os.environ, "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring", "SENTRA_ALLOW_HTTP_LOOPBACK": "1"}
    proc = subprocess.run(
        sentra_cmd(*login_args(provider, "--timeout", "5")),
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=WAIT_S,
    )
    assert proc.returncode == 6
    assert "no OS credential store" in proc.stderr
    assert "http://" not in proc.stderr  # no URL printed: nothing started


def test_token_store_chunks_and_refuses_a_plaintext_keyring(tmp_path: Path) -> None:
    """Long tokens (Supabase's run past Windows' 2.5 KB entry limit) are split and joined
    back exactly; a shorter one leaves no stale chunk; a plaintext file keyring is refused."""
    from sentra_scan.auth.tokens import TokenStore
    from sentra_scan.errors import KeyStateError
    from tests.keyring_memory import MemoryKeyring, PlaintextFileKeyring

    provider = oauth.Provider("oidc", "https://idp.example.test", "https://a", "https://t", "https://j")
    backend = MemoryKeyring()
    store = TokenStore(backend)
    long_access, refresh = "a" * 999 + "b" * 1001 + "c" * 500, "r" * 40
    store.save(provider, long_access, refresh)
    assert store.load(provider) == (long_access, refresh)
    assert all(len(v) <= 1000 for v in backend.entries.values())
    store.save(provider, "short-access", None)  # no new refresh token: the old one stays
    assert store.load(provider) == ("short-access", refresh)
    names = sorted(u.removeprefix(provider.issuer) for _s, u in backend.entries)
    assert names == ["|access:0", "|access:n", "|refresh:0", "|refresh:n"]
    store.clear(provider)
    assert backend.entries == {}
    assert store.load(provider) == (None, None)
    with pytest.raises(KeyStateError, match="no OS credential store"):
        TokenStore(PlaintextFileKeyring())
