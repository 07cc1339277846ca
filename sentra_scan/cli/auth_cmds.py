"""`sentra login`, `sentra logout`, `sentra whoami`. No token is ever printed."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime

import click

from sentra_scan.cli.common import guarded
from sentra_scan.errors import ExitCode, UsageError


def _http_loopback_allowed() -> bool:
    # Plain HTTP to 127.0.0.1 only: local test providers. Never for a real provider.
    return os.environ.get("SENTRA_ALLOW_HTTP_LOOPBACK") == "1"


@click.command()
@click.option("--provider", "provider_url", required=True, help="Supabase project URL, or OIDC issuer with --oidc.")
@click.option("--oidc", is_flag=True, help="The provider is an OpenID Connect issuer (discovery).")
@click.option("--client-id", default="", help="OIDC client id (public client, PKCE).")
@click.option("--audience", default=None, help="Expected 'aud' (OIDC; default: the client id).")
@click.option("--role", default=None, help="Required 'role' claim (Supabase: authenticated).")
@click.option("--upstream", default="github", show_default=True, help="Supabase: the identity provider to use.")
@click.option("--no-browser", is_flag=True, help="Print the URL instead of opening a browser.")
@click.option("--timeout", default=300.0, show_default=True, help="Seconds to wait for the browser.")
def login(
    provider_url: str,
    oidc: bool,
    client_id: str,
    audience: str | None,
    role: str | None,
    upstream: str,
    no_browser: bool,
    timeout: float,
) -> int:
    """Log in (OAuth 2.0 + PKCE S256, loopback redirect); tokens go to the OS credential store."""
    from sentra_scan.auth import oauth
    from sentra_scan.auth.tokens import TokenStore

    def go() -> int:
        store = TokenStore()  # fail before the browser if there is nowhere safe to keep tokens
        if oidc:
            if not client_id:
                raise UsageError("--oidc needs --client-id")
            provider = oauth.discover(
                provider_url,
                client_id=client_id,
                audience=audience,
                role=role,
                allow_http_loopback=_http_loopback_allowed(),
            )
        else:
            provider = oauth.supabase(provider_url, upstream=upstream, allow_http_loopback=_http_loopback_allowed())

        def show(url: str) -> None:
            if no_browser:
                click.echo(f"Open this URL in your browser to log in:\n{url}", err=True)
                return
            import webbrowser

            if not webbrowser.open(url):
                click.echo(f"Open this URL in your browser to log in:\n{url}", err=True)

        tokens = oauth.login(provider, open_browser=show, timeout_s=timeout)
        store.save(provider, tokens.access_token, tokens.refresh_token)
        exp = datetime.fromtimestamp(tokens.claims.expires_at, tz=UTC).isoformat()
        click.echo(f"sentra: logged in as {tokens.claims.subject} ({provider.issuer}); token valid until {exp}")
        return int(ExitCode.OK)

    return guarded(go)


@click.command()
def logout() -> int:
    """Revoke the session at the provider and delete the tokens."""
    from sentra_scan.auth import oauth
    from sentra_scan.auth.tokens import TokenStore, saved_provider
    from sentra_scan.auth.verify import TokenError

    def go() -> int:
        provider = saved_provider()
        if provider is None:
            click.echo("sentra: not logged in")
            return int(ExitCode.OK)
        store = TokenStore()
        access, refresh = store.load(provider)
        try:
            tokens = None
            if access and provider.kind == "supabase":  # its sign-out takes the access token
                claims = oauth.verify_token(access, provider.policy(), provider.jwks())
                tokens = oauth.Tokens(access, refresh, claims)
            revoked = "revoked and " if oauth.revoke(provider, tokens, refresh) else ""
        except TokenError as exc:
            revoked = ""
            click.echo(f"warning: could not revoke at the provider ({exc.message}); deleting locally", err=True)
        store.clear(provider)
        click.echo(f"sentra: session {revoked}deleted")
        return int(ExitCode.OK)

    return guarded(go)


@click.command()
def whoami() -> int:
    """Subject, issuer and expiry of the current session (refreshing it if needed)."""
    from sentra_scan.auth.session import current

    def go() -> int:
        provider, tokens = current()
        exp = tokens.claims.expires_at
        left = int(exp - time.time())
        when = datetime.fromtimestamp(exp, tz=UTC).isoformat()
        click.echo(f"subject: {tokens.claims.subject}\nissuer: {provider.issuer}\nexpires: {when} (in {left}s)")
        return int(ExitCode.OK)

    return guarded(go)


def register(group: click.Group) -> None:
    group.add_command(login)
    group.add_command(logout)
    group.add_command(whoami)
