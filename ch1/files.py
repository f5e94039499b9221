"""The one check every reader of a user's file makes first: a regular file, before it is opened.

Opening a FIFO for reading waits for a writer, and a device such as /dev/zero never ends, so
anything but a regular file (or a link to one) is refused unopened, with one line naming it.
Nothing here imports Keras.
"""

import errno
import os
import stat


def file_kind(mode):
    """A file's kind in words, from its ``os.stat`` mode."""
    kinds = ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
             (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"), (stat.S_ISREG, "a regular file"))
    return next((kind for test, kind in kinds if test(mode)), "an unknown kind of file")


def reason(exc):
    """An OSError in words for a one-line message: its ``strerror``, and a loop of symbolic links
    (``ELOOP``, whose ``strerror`` says only "Too many levels of symbolic links") by that name."""
    if exc.errno == errno.ELOOP:
        return "a loop of symbolic links"
    return exc.strerror or str(exc)


def regular_file(path, what, error, name=None):
    """``os.stat(path)`` of a regular file; else raise ``error`` with one line:
    ``name: no such file``, ``name: a folder, not <what>`` or ``name: not a regular file (a FIFO), not <what>``.
    ``name`` (default ``path``) is how the file is named in the message."""
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
        raise error(f"{name}: not a regular file ({file_kind(info.st_mode)}), not {what}")
    return info
