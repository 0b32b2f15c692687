"""Who holds a claim on an outbox message, and whether that holder can still be alive.

A holder is named ``host:pid:random``. A claim of a process of this machine that no longer
exists (killed with SIGKILL, say) is taken back at once; any other claim only when its lease
expires, since a process of another machine sharing the state file cannot be asked.
"""

from __future__ import annotations

import os
import socket
import uuid

__all__ = ["holder_alive", "new_owner"]


def new_owner() -> str:
    """A claim holder's name: host and process (to tell a killed holder) and a unique part."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:12]}"


def holder_alive(owner: str) -> bool:
    host, _, rest = owner.partition(":")
    pid_text = rest.partition(":")[0]
    if host != socket.gethostname() or not pid_text.isdigit():
        return True  # another machine's process: only its lease tells
    pid = int(pid_text)
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists, owned by someone else
        return True
    return True
