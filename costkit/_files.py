"""Files costkit creates hold prompts, answers and spend: private to their owner by default.

Directories costkit creates are 0700 and files 0600 (whatever the umask); an existing file or
directory keeps the mode its owner gave it. Used by the record sinks, the disk cache and the batch
lane's state file.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

PRIVATE_DIR_MODE = 0o700
PRIVATE_FILE_MODE = 0o600


def make_private_dirs(directory: Path) -> None:
    """Create ``directory`` and any missing parents with mode 0700 (existing ones are left alone)."""
    missing = []
    d = directory
    while not d.exists():
        missing.append(d)
        if d.parent == d:
            break
        d = d.parent
    for d in reversed(missing):
        with contextlib.suppress(FileExistsError):  # another process made it meanwhile
            d.mkdir(mode=PRIVATE_DIR_MODE)


def create_private_file(path: Path) -> None:
    """Create ``path`` empty with mode 0600 unless it exists (its mode is then the owner's choice)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE_MODE)
    except FileExistsError:
        return
    os.close(fd)


__all__ = ["PRIVATE_DIR_MODE", "PRIVATE_FILE_MODE", "create_private_file", "make_private_dirs"]
