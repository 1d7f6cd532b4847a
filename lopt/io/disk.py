"""A full disk (or an exhausted quota) while a run writes: recognized however the write failed
(Python's OSError, or the message orbax's TensorStore gives for errno 28) and turned into one
paragraph saying what failed, where, how much space it needed and what is free. Every writer of a
run writes whole or not at all, so what was written before stays intact and the same command
resumes once space is freed."""
import errno
import re
import shutil
from pathlib import Path

from lopt.errors import UserError

_ERRNOS = (errno.ENOSPC, errno.EDQUOT)
_MESSAGES = ("No space left on device", "Disk quota exceeded")


def is_out_of_space(err: BaseException) -> bool:
    """Whether `err` (or an exception it came from) is a write that failed for lack of space."""
    seen: BaseException | None = err
    while seen is not None:
        if isinstance(seen, OSError) and seen.errno in _ERRNOS or any(m in str(seen) for m in _MESSAGES):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB"


def out_of_space(err: BaseException, what: str, where: Path, needed: int | None = None) -> UserError:
    """The error of writing `what` to `where` having failed with `err` for lack of space; `needed`:
    the bytes the write needed, when known (else read from the error where it says)."""
    said = re.search(r"[Ff]ailed to write (\d+) bytes", str(err))
    if needed is None and said:
        needed = int(said.group(1))
    existing = next((p for p in [Path(where), *Path(where).parents] if p.exists()), Path("/"))
    free = shutil.disk_usage(existing).free
    size = f"; it needed about {_mb(needed)}" if needed else ""
    return UserError(f"The disk is full: writing {what} to {where} failed (no space left on the device{size}, "
                     f"{_mb(free)} free there now). What was written before it is intact (the previous checkpoints, "
                     f"metrics.jsonl, results and figures). Free some space, then run the same command: the run "
                     f"resumes from its last checkpoint.")
