"""Move a secret out of the code: the value goes into the store under a suggested name, the
literal becomes a reference that fits the file (an environment lookup in code, a
`sentra://env/NAME` string in config files, `${NAME}` in .env files and Dockerfiles), in
the staged blob and, separately, in the working-tree file, so unstaged edits survive.
Or allow it: an inline `sentra:allow <rule>` comment, or the baseline.

Nothing here prints: the caller reports. No value leaves the process except into the store.
"""

from sentra_scan.move.apply import Fixer, Outcome, Plan
from sentra_scan.move.naming import choose_entry, entry_path, suggest_name
from sentra_scan.move.rewrite import MoveError, ensure_import, find_literal, language, reference

__all__ = [
    "Fixer",
    "MoveError",
    "Outcome",
    "Plan",
    "choose_entry",
    "ensure_import",
    "entry_path",
    "find_literal",
    "language",
    "reference",
    "suggest_name",
]
