"""`sentra secrets set|get|list|rm|import|audit`, `sentra run`, `sentra inject`."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from sentra_scan.cli.common import guarded
from sentra_scan.errors import ExitCode, KeyStateError, UsageError
from sentra_scan.state import State
from sentra_scan.store import Store


def _with_store(fn: Callable[[State, Store], int], *, create: bool = True) -> int:
    from sentra_scan.storeops import open_store

    def go() -> int:
        state, store, _config = open_store(create=create)
        try:
            return fn(state, store)
        finally:
            state.close()

    return guarded(go)


@click.group()
def secrets() -> None:
    """The encrypted secret store (.sentra/secrets.enc): entries named by path, e.g. dev/STRIPE_KEY."""


@secrets.command("set")
@click.argument("path")
@click.option("--value-stdin", is_flag=True, help="Read the value from stdin (else a hidden prompt on a terminal).")
def secrets_set(path: str, value_stdin: bool) -> int:
    """Store a value (never echoed)."""
    from sentra_scan.store import check_path
    from sentra_scan.storeops import read_value

    def fn(_state: State, store: Store) -> int:
        check_path(path)
        value = read_value(value_stdin, f"value for {path}: ")
        if not value:
            raise UsageError("empty value")
        store.set(path, value)
        click.echo(f"sentra: {path} stored")
        return int(ExitCode.OK)

    return _with_store(fn)


@secrets.command("get")
@click.argument("path")
@click.option("--reveal", is_flag=True, help="Print the value (only to a terminal).")
def secrets_get(path: str, reveal: bool) -> int:
    """Check an entry; print its value only with --reveal and a terminal."""

    def fn(_state: State, store: Store) -> int:
        value = store.get(path)
        if not reveal:
            click.echo(f"{path}: set ({len(value)} characters); --reveal on a terminal prints it")
            return int(ExitCode.OK)
        if not sys.stdout.isatty():
            raise UsageError("refusing to print a secret to a pipe or file", hint="use 'sentra run' or 'sentra inject'")
        click.echo(value)
        return int(ExitCode.OK)

    return _with_store(fn, create=False)


@secrets.command("list")
@click.option("--json", "as_json", is_flag=True)
def secrets_list(as_json: bool) -> int:
    """Entry paths (never values)."""

    def fn(_state: State, store: Store) -> int:
        names = store.names()
        if as_json:
            click.echo(json.dumps(names))
        else:
            for name in names:
                click.echo(name)
            if not names:
                click.echo("the store is empty", err=True)
        return int(ExitCode.OK)

    return _with_store(fn)


@secrets.command("rm")
@click.argument("path")
def secrets_rm(path: str) -> int:
    """Remove an entry."""

    def fn(_state: State, store: Store) -> int:
        store.remove(path)
        click.echo(f"sentra: {path} removed")
        return int(ExitCode.OK)

    return _with_store(fn, create=False)


@secrets.command("import")
@click.argument("env_file", type=click.Path(path_type=Path, dir_okay=False, exists=True))
@click.option("--env", "env", default="dev", show_default=True, help="Entries go under ENV/.")
def secrets_import(env_file: Path, env: str) -> int:
    """Import a .env file's KEY=value lines as ENV/KEY entries."""
    from sentra_scan.store import parse_env_file

    def fn(_state: State, store: Store) -> int:
        pairs = parse_env_file(env_file.read_text(encoding="utf-8"))
        for key, value in pairs:
            store.set(f"{env}/{key}", value, action="import")
        click.echo(f"sentra: {len(pairs)} entries imported under {env}/")
        return int(ExitCode.OK)

    return _with_store(fn)


@secrets.command("audit")
@click.option("--verify", is_flag=True, help="Check the hash chain and the store's anchor.")
@click.option("--json", "as_json", is_flag=True)
def secrets_audit(verify: bool, as_json: bool) -> int:
    """The store's audit log (time, actor, action, path; never a value)."""
    from sentra_scan.auditlog import LOG_FILE, AuditLog

    def fn(_state: State, store: Store) -> int:
        log = AuditLog(store.path.with_name(LOG_FILE))
        if verify:
            result = log.verify(store.verify_anchor() if store.anchor is not None else None)
            for p in result.problems:
                click.echo(f"audit log: {p}", err=True)
            if not result.ok:
                raise KeyStateError(f"the audit log failed verification ({len(result.problems)} problems)")
            click.echo(f"sentra: audit log verified: {result.entries} entries, chain intact")
            return int(ExitCode.OK)
        records = log.records()
        if as_json:
            click.echo(json.dumps(records, indent=2))
        for r in [] if as_json else records:
            click.echo(f"{r.get('time')}  {r.get('actor')}  {r.get('action')}  {r.get('path')}")
        return int(ExitCode.OK)

    return _with_store(fn)


@click.command(context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@click.option("--env", "env", default=None, help="The environment (default: default-env in .sentra.yaml, or dev).")
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
def run(env: str | None, command: tuple[str, ...]) -> int:
    """Run COMMAND with the environment's entries as environment variables: sentra run -- CMD ARGS."""
    from sentra_scan.storeops import entry_env, open_store
    from sentra_scan.storeops import run as run_command

    def go() -> int:
        state, store, config = open_store(create=False)
        try:
            values = entry_env(store, config, env or config.default_env)
        finally:
            state.close()
        return run_command(command, values)

    return guarded(go)


@click.command()
@click.option("-i", "--input", "template", type=click.Path(path_type=Path, dir_okay=False, exists=True), required=True)
@click.option("-o", "--output", "output", type=click.Path(path_type=Path, dir_okay=False), required=True)
@click.option("--env", "env", default=None)
def inject(template: Path, output: Path, env: str | None) -> int:
    """Render sentra://env/NAME references in a template into OUTPUT (mode 0600)."""
    from sentra_scan.storeops import entry_env, open_store, render, write_0600

    def go() -> int:
        state, store, config = open_store(create=False)
        try:
            values = entry_env(store, config, env or config.default_env)
        finally:
            state.close()
        write_0600(output, render(template.read_text(encoding="utf-8"), values, str(template)))
        click.echo(f"sentra: wrote {output} (0600)", err=True)
        return int(ExitCode.OK)

    return guarded(go)


def register(group: click.Group) -> None:
    group.add_command(secrets)
    group.add_command(run)
    group.add_command(inject)


def _peer(url: str, project: str, context: str, ca: Path | None, vault_role: str, vault_mount: str) -> Any:
    from sentra_scan import upload

    verify: Any = str(ca) if ca else True
    if url.startswith("vault://"):
        from sentra_scan.auth.session import current
        from sentra_scan.vault import VaultBackend, VaultClient, VaultRemote, parse_target

        target = parse_target(url)
        client = VaultClient(target.address, verify=verify)
        _provider, tokens = current()
        client.login_jwt(vault_role, tokens.access_token, mount=vault_mount)
        return VaultRemote(VaultBackend(client, target.mount, target.prefix), project)
    return upload.Remote(url, project, context, auth_header=upload.auth_header(), verify=verify)


def _sync(
    direction: str,
    env: str | None,
    server: str | None,
    project: str,
    ca: Path | None,
    vault_role: str = "sentra",
    vault_mount: str = "jwt",
) -> int:
    from sentra_scan import upload
    from sentra_scan.storeops import env_prefixes, open_store

    def go() -> int:
        state, store, config = open_store(create=False)
        try:
            context = env or config.default_env
            prefixes = env_prefixes(config, context)
            url = upload.require_server(server)
            remote = _peer(url, project, context, ca, vault_role, vault_mount)
            report = (upload.push if direction == "push" else upload.pull)(store, remote, prefixes)
        finally:
            state.close()
        done = report.pushed if direction == "push" else report.pulled
        click.echo(f"sentra: {direction}: {len(done)} entries, {len(report.unchanged)} unchanged")
        for path in report.conflicts:
            click.echo(f"conflict: {path}: the server and this store both changed it; nothing overwritten", err=True)
        return int(ExitCode.REMOTE if report.conflicts else ExitCode.OK)

    return guarded(go)


_sync_options = [
    click.option("--env", "env", default=None, help="Only this environment's entries (and its context header)."),
    click.option(
        "--server", "--to", "server", default=None, help="Server URL, or vault://HOST/MOUNT/PREFIX (or SENTRA_SERVER)."
    ),
    click.option("--project", required=True, help="The project on the server."),
    click.option("--ca", type=click.Path(path_type=Path, dir_okay=False, exists=True), help="Pin this CA bundle."),
    click.option("--vault-role", default="sentra", show_default=True, help="Vault JWT auth role."),
    click.option("--vault-auth-mount", "vault_mount", default="jwt", show_default=True, help="Vault JWT auth mount."),
]


def _with_sync_options(fn: Callable[..., int]) -> Callable[..., int]:
    for option in reversed(_sync_options):
        fn = option(fn)
    return fn


@secrets.command("push")
@_with_sync_options
def secrets_push(
    env: str | None, server: str | None, project: str, ca: Path | None, vault_role: str, vault_mount: str
) -> int:
    """Upload this environment's entries (ciphertext only) to the server or Vault."""
    return _sync("push", env, server, project, ca, vault_role, vault_mount)


@secrets.command("pull")
@_with_sync_options
def secrets_pull(
    env: str | None, server: str | None, project: str, ca: Path | None, vault_role: str, vault_mount: str
) -> int:
    """Download entries (ciphertext, verified with this store's keys) from the server or Vault."""
    return _sync("pull", env, server, project, ca, vault_role, vault_mount)
