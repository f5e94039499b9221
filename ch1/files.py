"""The one check every reader of a user's file makes first: a regular file (or a link to one), refused
unopened otherwise (a FIFO waits for a writer, /dev/zero never ends), in one line naming it."""

import errno
import os
import stat

KINDS = {stat.S_IFDIR: "a folder", stat.S_IFIFO: "a FIFO", stat.S_IFCHR: "a character device",
         stat.S_IFBLK: "a block device", stat.S_IFSOCK: "a socket"}


def reason(exc):
    """An OSError in words: its ``strerror``, and ``ELOOP`` as "a loop of symbolic links"."""
    return "a loop of symbolic links" if exc.errno == errno.ELOOP else exc.strerror or str(exc)


def regular_file(path, what, error, name=None):
    """``os.stat(path)`` of a regular file; else raise ``error`` with one line naming it ``name`` (default
    ``path``): ``no such file``, ``a folder, not <what>`` or ``not a regular file (a FIFO), not <what>``."""
    name = path if name is None else name
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise error(f"{name}: no such file") from None
    except OSError as exc:
        raise error(f"{name}: cannot read ({reason(exc)})") from None
    if stat.S_ISDIR(info.st_mode):
        raise error(f"{name}: a folder, not {what}")
    if not stat.S_ISREG(info.st_mode):
        kind = KINDS.get(stat.S_IFMT(info.st_mode), "an unknown kind of file")
        raise error(f"{name}: not a regular file ({kind}), not {what}")
    return info
