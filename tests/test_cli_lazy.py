"""The CLI imports a command's module only when the command runs: the table of lazily
loaded commands must name exactly what each module registers."""

from __future__ import annotations

import importlib
import subprocess
import sys

import click

from sentra_scan.cli import app


def test_the_lazy_table_names_what_each_module_registers() -> None:
    registered: dict[str, str] = {}
    for module in sorted(set(app.LAZY_COMMANDS.values())):
        group = click.Group()
        importlib.import_module(f"sentra_scan.cli.{module}").register(group)
        for name in group.commands:
            assert name not in registered, f"{name} registered by {registered.get(name)} and {module}"
            registered[name] = module
    assert registered == app.LAZY_COMMANDS
    assert not set(app.LAZY_COMMANDS) & set(app.cli.commands)  # no name both eager and lazy


def test_every_command_resolves() -> None:
    ctx = click.Context(app.cli)
    names = app.cli.list_commands(ctx)
    assert set(app.LAZY_COMMANDS) <= set(names)
    for name in names:
        assert app.cli.get_command(ctx, name) is not None, name


def test_a_command_imports_only_its_own_module() -> None:
    code = (
        "import sys\n"
        "from sentra_scan.cli.app import run\n"
        "run(['audit', '--help'])\n"
        "print(' '.join(sorted(m for m in sys.modules if m.startswith('sentra_scan.cli.'))))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    loaded = set(out.strip().splitlines()[-1].split())
    assert "sentra_scan.cli.commits" in loaded
    for other in ("secrets_cmds", "serve_cmds", "auth_cmds", "fix_cmds"):
        assert f"sentra_scan.cli.{other}" not in loaded
