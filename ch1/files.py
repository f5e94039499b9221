"""A user's files: the one check every reader makes first (a regular file, or a link to one, refused
unopened otherwise: a FIFO waits for a writer, /dev/zero never ends), in one line naming it; and the one
way every writer writes (a temporary name renamed into place: nothing half-written, whatever the signal)."""

import contextlib
import errno
import json
import os
import secrets
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


temporary = set()  # temporary files being written now (removed if Ctrl-C or SIGTERM ends the command)


def temporary_name(name):
    """``.<stem>.<8 hex digits><ext>``: where ``name`` is written before it is renamed into place."""
    stem, ext = os.path.splitext(name)
    return f".{stem}.{secrets.token_hex(4)}{ext}"


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path beside ``path`` (same extension), created with the mode the umask gives a
    new file (0644 under 022); rename it into place on success. On any exception the temporary file is
    removed; on Ctrl-C or SIGTERM too (ch1.cli.handle_signals)."""
    folder, name = os.path.split(path)  # as given, as ch1.cli.ensure_output_dir probed it: a relative path
    tmp = os.path.join(folder, temporary_name(name))  # stays short in a folder deeper than PATH_MAX
    temporary.add(tmp)
    os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
        temporary.discard(tmp)


def write_json(path, data):
    with atomic_path(path) as tmp:
        with open(tmp, "w") as f:
            json.dump(data, f, indent=2, sort_keys=False)
            f.write("\n")
    return path
