"""Reading a file a user named, without letting the name do anything but name a regular file.

A path on a command line or in a definitions folder may be a FIFO (opening it for reading
blocks until someone writes), a device (endless, or with side effects on open), a directory, or
a symlink leading out of the folder being loaded. :func:`read_user_file` is the one way
kpiforge reads such a file: it refuses anything but a regular file before reading a byte, and
reads at most ``limit + 1`` bytes so the caller can tell "too large" without reading it all.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from .errors import FileRefused, FileTooLarge

__all__ = ["FileRefused", "FileTooLarge", "is_inside", "kind_of", "read_user_file"]

# O_NONBLOCK: opening a FIFO that has no writer returns at once instead of blocking forever
# (the fstat below then refuses it); it changes nothing for a regular file.
_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)


def kind_of(mode: int) -> str:
    """What a non-regular file is, in words, for "... is not a regular file"."""
    for test, name in ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return "not a regular file"


def _refuse_irregular(mode: int) -> None:
    if not stat.S_ISREG(mode):
        kind = kind_of(mode)
        what = kind if kind == "not a regular file" else f"{kind}, not a regular file"
        raise FileRefused("not-a-file", f"cannot read: {what}")


def read_user_file(path: str | os.PathLike[str], *, limit: int) -> bytes:
    """The bytes of the regular file ``path``, if it holds at most ``limit`` of them.

    Raises :class:`FileRefused` with code ``io`` (cannot open or read) or ``not-a-file``
    (FIFO, device, directory, socket), before anything is read and without blocking, and
    :class:`FileTooLarge` after reading no more than ``limit + 1`` bytes.
    """
    try:
        # stat first: opening a device can itself have effects, so never open one
        _refuse_irregular(os.stat(path).st_mode)
        fd = os.open(path, _OPEN_FLAGS)
    except OSError as exc:
        raise FileRefused("io", f"cannot read file: {exc.strerror or exc}") from exc
    try:
        # again on the open file: the path may have been swapped between stat and open
        info = os.fstat(fd)
        _refuse_irregular(info.st_mode)
        chunks: list[bytes] = []
        remaining = limit + 1
        while remaining > 0:
            chunk = os.read(fd, min(remaining, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            remaining -= len(chunk)
        data = b"".join(chunks)
    except OSError as exc:
        raise FileRefused("io", f"cannot read file: {exc.strerror or exc}") from exc
    finally:
        os.close(fd)
    if len(data) > limit:
        raise FileTooLarge(max(info.st_size, len(data)), limit)
    return data


def is_inside(path: Path, root: Path) -> bool:
    """Whether ``path``, every symlink followed, lies in ``root`` (itself resolved)."""
    try:
        path.resolve().relative_to(root.resolve())
    except (ValueError, OSError, RuntimeError):  # RuntimeError: a symlink loop
        return False
    return True
