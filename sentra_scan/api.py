"""The library API: what the CLI calls, usable without it."""

from __future__ import annotations

import dataclasses
import io
from collections.abc import Iterable, Sequence
from pathlib import Path

from sentra_scan.config import CONFIG_NAME, Config, load_config
from sentra_scan.model import Fragment, ScanResult, Skipped
from sentra_scan.ruleset import RuleSet
from sentra_scan.scan import Scanner


def find_config(start: Path | None = None) -> Path | None:
    """`.sentra.yaml` at the top of the enclosing work tree (or in `start` outside git)."""
    here = (start or Path.cwd()).resolve()
    for directory in (here, *here.parents):
        if (directory / CONFIG_NAME).is_file():
            return directory / CONFIG_NAME
        if (directory / ".git").exists():
            return None
    return None


def find_root(start: Path | None = None) -> Path | None:
    """The top of the enclosing work tree (the directory holding `.git`)."""
    here = (start or Path.cwd()).resolve()
    for directory in (here, *here.parents):
        if (directory / ".git").exists():
            return directory
    return None


def make_scanner(config: Config | None = None, rules_dir: Path | None = None, start: Path | None = None) -> Scanner:
    config = config if config is not None else load_config(find_config(start))
    if not config.root:
        root = find_root(start)
        if root is not None:
            config = dataclasses.replace(config, root=str(root))
    return Scanner(config.build_ruleset(rules_dir), config)


def scan_items(items: Iterable[Fragment | Skipped], scanner: Scanner | None = None) -> ScanResult:
    return (scanner or make_scanner()).scan(items)


def scan_staged(repo: Path | None = None, scanner: Scanner | None = None) -> ScanResult:
    """Scan what `git commit` would add in the repository at (or around) `repo`."""
    from sentra_scan.sources.staged import StagedSource

    scanner = scanner or make_scanner(load_config(find_config(repo)))
    return scanner.scan(StagedSource(repo, max_file_size=scanner.config.max_file_size).items())


def scan_paths(paths: Sequence[Path], scanner: Scanner | None = None, *, respect_gitignore: bool = True) -> ScanResult:
    from sentra_scan.sources.files import FileSource

    scanner = scanner or make_scanner()
    source = FileSource(paths, max_file_size=scanner.config.max_file_size, respect_gitignore=respect_gitignore)
    return scanner.scan(source.items())


def scan_text(text: str, path: str = "<text>", scanner: Scanner | None = None) -> ScanResult:
    from sentra_scan.sources.files import StdinSource

    scanner = scanner or make_scanner(Config())
    stream = io.BytesIO(text.encode("utf-8"))
    return scanner.scan(StdinSource(name=path, max_file_size=scanner.config.max_file_size, stream=stream).items())


def load_ruleset(config: Config | None = None) -> RuleSet:
    return (config or Config()).build_ruleset()
