"""`sentra key ...` and `sentra history`: the encrypted local state."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from typing import Any

import click

from sentra_scan.cli.common import guarded
from sentra_scan.errors import ExitCode, KeyStateError


@click.group()
def key() -> None:
    """The key that encrypts Sentra's local state."""


@key.command("status")
@click.option("--json", "as_json", is_flag=True)
def key_status(as_json: bool) -> int:
    """Which key source is in use and whether it opens this repository's state (no secrets shown)."""
    from sentra_scan.keys import KEYS_FILE, select_source
    from sentra_scan.state import open_state, state_dir

    def go() -> int:
        directory = state_dir()
        info: dict[str, Any] = {"state_dir": str(directory) if directory else None}
        source = select_source(interactive=False)
        info["source"] = source.describe()
        if directory is None or not (directory / KEYS_FILE).exists():
            info["state"] = "none yet (created by the first recorded scan)"
        else:
            state = open_state(source=source, create=False)
            try:
                info["state"] = "opens"
                info["created_with"] = state.keys.envelope.get("source")
                info["active_key_id"] = state.keys.active_id
                info["keys"] = len(state.keys.keys)
                info["scans_recorded"] = state.ledger.conn.execute("SELECT COUNT(*) FROM scans").fetchone()[0]
            finally:
                state.close()
        if as_json:
            click.echo(json.dumps(info, indent=2))
        else:
            for k, v in info.items():
                click.echo(f"{k.replace('_', ' ')}: {v}")
        return int(ExitCode.OK)

    return guarded(go)


@key.command("rotate")
def key_rotate() -> int:
    """A new data key; everything re-encrypted atomically (a crash leaves old or new, never neither)."""
    from sentra_scan.api import find_config, find_root
    from sentra_scan.config import load_config
    from sentra_scan.state import open_state, rotate
    from sentra_scan.storeops import actor, store_path

    def go() -> int:
        state = open_state(create=False)
        root = find_root()
        stores = [store_path(load_config(find_config(root)), root)] if root else []
        try:
            out = rotate(state, stores, actor(root) if root else "")
        finally:
            state.close()
        click.echo(
            f"sentra: data key rotated ({out['old_key']} -> {out['new_key']}), "
            f"{out['rows']} ledger records and {out['entries']} store entries re-encrypted"
        )
        return int(ExitCode.OK)

    return guarded(go)


@key.command("rewrap")
@click.option(
    "--to",
    "to",
    type=click.Choice(["keyring", "key", "file", "password"]),
    required=True,
    help="The new key source (SENTRA_NEW_KEY, SENTRA_NEW_KEY_FILE, SENTRA_NEW_PASSWORD or a prompt).",
)
def key_rewrap(to: str) -> int:
    """Wrap the same data key with a new key source (e.g. a new password); data is not re-encrypted."""
    import os

    from sentra_scan.keys import select_source
    from sentra_scan.state import open_state

    def go() -> int:
        env = {"SENTRA_KEY_SOURCE": to}
        for name in ("KEY", "KEY_FILE", "PASSWORD"):
            value = os.environ.get(f"SENTRA_NEW_{name}")
            if value:
                env[f"SENTRA_{name}"] = value
        if to == "password" and "SENTRA_PASSWORD" not in env:
            if not sys.stdin.isatty():
                raise KeyStateError("set SENTRA_NEW_PASSWORD, or run in a terminal to be asked")
            first = click.prompt("New password", hide_input=True)
            if click.prompt("Repeat", hide_input=True) != first:
                raise KeyStateError("the passwords differ")
            env["SENTRA_PASSWORD"] = first
        new_source = select_source(env, interactive=False)
        state = open_state(create=False)
        try:
            state.keys.rewrap(new_source)
        finally:
            state.close()
        click.echo(f"sentra: data key now wrapped by {new_source.describe()}")
        return int(ExitCode.OK)

    return guarded(go)


@click.command()
@click.option("-n", "limit", default=20, show_default=True, help="How many scans.")
@click.option("--json", "as_json", is_flag=True)
def history(limit: int, as_json: bool) -> int:
    """Recent scans and their findings, from the encrypted ledger (redacted)."""
    from sentra_scan.state import open_state

    def go() -> int:
        state = open_state(create=False)
        try:
            records = state.ledger.history(limit)
        finally:
            state.close()
        if as_json:
            doc = [{"id": r.id, **r.data, "findings": list(r.findings)} for r in records]
            click.echo(json.dumps(doc, indent=2))
            return int(ExitCode.OK)
        for r in records:
            when = datetime.fromtimestamp(r.data.get("when", 0), tz=UTC).strftime("%Y-%m-%d %H:%M:%S")
            d = r.data
            click.echo(
                f"{when}  {d.get('mode', '?'):<11} {d.get('target', '')}: {d.get('findings', 0)} findings"
                f"{' (incomplete)' if d.get('incomplete') else ''}, {d.get('duration_s', 0):.2f}s"
            )
            for f in r.findings:
                commit = f" @{f['commit']['id'][:12]}" if f.get("commit") else ""
                click.echo(f"    {f['path']}:{f['line']}{commit}  {f['rule_id']}  {f['fingerprint']}")
        if not records:
            click.echo("no scans recorded yet")
        return int(ExitCode.OK)

    return guarded(go)


def register(group: click.Group) -> None:
    group.add_command(key)
    group.add_command(history)
    group.add_command(doctor)


@click.command()
def doctor() -> int:
    """Check this machine and repository (key source, credential store, hooks, formats, server)."""
    from sentra_scan.doctor import run_checks

    def go() -> int:
        checks = run_checks()
        for c in checks:
            mark = "ok  " if c.ok else ("warn" if c.optional else "FAIL")
            click.echo(f"[{mark}] {c.name}: {c.detail}")
            if not c.ok and c.fix:
                click.echo(f"       fix: {c.fix}")
        failed = [c for c in checks if not c.ok and not c.optional]
        return int(ExitCode.CONFIG if failed else ExitCode.OK)

    return guarded(go)
