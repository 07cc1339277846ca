"""Sources turn git objects, files or stdin into fragments. Only sources know git."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

from sentra_scan.model import Fragment, Skipped


class Source(Protocol):
    def items(self) -> Iterator[Fragment | Skipped]: ...
