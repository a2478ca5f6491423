"""Output helpers: aligned text tables and atomic file writes (never a half-written file)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

from .errors import UserError


def format_table(header: Sequence[str], rows: Sequence[Sequence[object]], align: str | None = None) -> str:
    """A plain-text table; ``align`` has one of ``l``, ``r``, ``c`` per column (default left)."""
    cells = [[str(c) for c in header]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    align = align or "l" * len(header)
    justify = {"l": str.ljust, "r": str.rjust, "c": str.center}

    def line(row: list[str]) -> str:
        return "  ".join(justify[a](c, w) for c, w, a in zip(row, widths, align)).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(cells[0]), rule] + [line(r) for r in cells[1:]])


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file and a rename, so readers never see a partial file."""
    path = Path(path)
    if path.is_dir():
        raise UserError(f"{path} is a folder; give a file name")
    if not path.parent.exists():
        raise UserError(f"cannot write {path}: folder {path.parent} does not exist")
    from objectives.atomic_file import write_atomically

    try:
        write_atomically(path, lambda handle: handle.write(data))
    except OSError as error:
        raise UserError(f"cannot write {path}: {error.strerror or error}") from None


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Atomically write UTF-8 text."""
    atomic_write_bytes(path, text.encode("utf-8"))
