"""Pool processes end with the process that owns the pool, however that one ends.

A ``lick-archive watch`` or ``ingest`` killed by SIGKILL (the OOM killer, an operator,
a systemd stop timeout) runs no clean-up.  Its forkserver-started workers would then
wait on their task queue for ever: they hold its write end themselves, so they never
see end-of-file.  They also hold the forkserver's liveness pipe and the resource
tracker's pipe open, so those two processes stay as well, and every kill leaves four
or five processes behind.

The kernel's parent-death signal is not enough on its own: the parent of a forkserver
child is the forkserver, not the pool's owner.  So each worker also watches the owner
through a pidfd, in a thread that ends the process once the owner is gone.  Once the
workers are gone the forkserver and the resource tracker see end-of-file and exit too.
"""

from __future__ import annotations

import ctypes
import logging
import os
import select
import signal
import sys
import threading

log = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def end_with(owner_pid: int) -> None:
    """End this process as soon as process ``owner_pid`` has ended, or its own parent.

    Call it first in a pool initializer.  The exit skips all clean-up: the owner is
    gone, and the database rolls back a transaction whose connection drops.
    """
    if not sys.platform.startswith("linux"):
        return  # prctl and pidfd are Linux's; elsewhere workers may outlive a killed owner
    _die_with_parent()
    try:
        pidfd = os.pidfd_open(owner_pid)
    except ProcessLookupError:
        os._exit(1)  # the owner ended before this worker got going
    except OSError as exc:  # a kernel older than 5.3
        log.warning("cannot watch the ingest process %d (%s): this worker may outlive it",
                    owner_pid, exc)
        return
    threading.Thread(target=_exit_when_readable, args=(pidfd,), daemon=True,
                     name=f"end-with-{owner_pid}").start()


def _die_with_parent() -> None:
    """SIGKILL from the kernel when the process that forked this one ends."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        log.warning("prctl(PR_SET_PDEATHSIG): %s", os.strerror(ctypes.get_errno()))


def _exit_when_readable(pidfd: int) -> None:
    # A pidfd becomes readable when its process has ended (a zombie counts).
    poller = select.poll()
    poller.register(pidfd, select.POLLIN)
    while not poller.poll():
        pass
    os._exit(1)
