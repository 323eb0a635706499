"""What a killed write leaves, and how the next one clears it (used by `mnist_cnn.fileio`).

`fileio` writes every file and folder under a hidden temporary name beside its final one and
renames it into place. A process killed before the rename (`kill -9`, a power cut, the OOM
killer) leaves that temporary behind. Its name says who wrote it,
`.NAME.<pid>-<machine>.<8 random>[suffix]` (a folder moved aside by a swap:
`.NAME.old.<pid>-<machine>.<8 random>`), so the next write into the same folder removes the
leftovers of writers that are gone and never those of a live one (`remove_leftovers`). A PID
says whether its writer lives only on the machine (or container) that wrote it: `<machine>` is
a digest of the host name, and other machines' temporaries are left alone.

`exchange` swaps two folders in one step (Linux `renameat2(RENAME_EXCHANGE)`), so a report
folder being replaced is never missing; where the file system cannot, `fileio.atomic_dir`
renames twice, and a folder that a run killed between the renames left aside is put back here.

`python -m mnist_cnn.leftovers FOLDER...` (`make clean`) removes every temporary under the
folders, an earlier version's too (those named no writer) and live writers' as well.
Standard library only: `make clean` needs no virtual environment.
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import shutil
import sys
from pathlib import Path

_TEMPORARY = re.compile(r"\.(?P<name>.+?)\.(?P<old>old\.)?(?P<pid>\d+)-(?P<machine>[0-9a-f]{6})"
                        r"\.[a-z0-9_]{8}(\.[^/]*)?")
# An earlier version's: ".NAME.<8 random>" plus NAME's suffix (or .tmp) for a file, nothing for
# a folder; its folders moved aside, ".NAME.old.<8 random>".
_EARLIER = re.compile(r"\.(?P<name>.+)\.[a-z0-9_]{8}(?P<tail>\.[^.]+)?")
_SWEPT = set()  # folders this process cleared already (a dead writer's leftovers stay dead)


def machine() -> str:
    """This machine's tag in temporary names: 6 hex digits of its host name's SHA-256."""
    import socket

    return hashlib.sha256(socket.gethostname().encode()).hexdigest()[:6]


def prefix(name: str, old=False) -> str:
    """The start of a temporary name for `name` written by this process (`old`: for the
    folder that a two-rename swap moves aside)."""
    return f".{name}.{'old.' if old else ''}{os.getpid()}-{machine()}."


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    try:  # killed but not yet reaped by its parent: gone all the same
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def _earlier(entry: str, is_dir: bool) -> bool:
    match = _EARLIER.fullmatch(entry)
    if match is None:
        return False
    if is_dir:
        return match["tail"] is None
    return match["tail"] in (Path(match["name"]).suffix or ".tmp", ".tmp")


def _put_back(aside: Path) -> None:
    """A folder that a swap moved aside (`aside/NAME`) goes back to NAME if NAME is missing:
    the run was killed between its two renames."""
    inside = list(aside.iterdir()) if aside.is_dir() and not aside.is_symlink() else []
    if len(inside) == 1 and not os.path.lexists(aside.parent / inside[0].name):
        os.rename(inside[0], aside.parent / inside[0].name)


def remove_leftovers(folder, everyone=False) -> list:
    """Remove the hidden temporaries that killed writes left in `folder` (not below it).

    Parameters
    ----------
    folder : str or Path
        The folder to clear; a missing one is fine.
    everyone : bool
        Also those of writers that may be alive, of other machines and of an earlier version
        (`make clean`); by default only those whose writer, on this machine, is gone.

    Returns
    -------
    list of Path
        What was removed. A folder moved aside by a swap killed halfway is put back first,
        also an earlier version's (which named no writer: only put back, unless `everyone`).
    """
    folder = Path(folder)
    try:
        entries = sorted(os.listdir(folder))
    except OSError:
        return []
    removed = []
    for entry in entries:
        where, match = folder / entry, _TEMPORARY.fullmatch(entry)
        is_dir = where.is_dir() and not where.is_symlink()
        if match is not None:
            if not everyone and (match["machine"] != machine() or _alive(int(match["pid"]))):
                continue
            if match["old"]:
                _put_back(where)
        elif _earlier(entry, is_dir):
            if entry.rpartition(".")[0].endswith(".old"):
                _put_back(where)
                if not everyone and any(where.iterdir()):
                    continue
            elif not everyone:
                continue
        else:
            continue
        if is_dir:
            shutil.rmtree(where, ignore_errors=True)
        else:
            where.unlink(missing_ok=True)
        removed.append(where)
    return removed


def sweep(folder, again=False) -> None:
    """`remove_leftovers(folder)`, once per folder and process (`again`: this time too);
    failures are left to the write that follows, which names its reason."""
    key = os.path.abspath(folder)
    if again or key not in _SWEPT:
        _SWEPT.add(key)
        try:
            remove_leftovers(folder)
        except OSError:
            pass


_RENAME_EXCHANGE, _AT_FDCWD = 2, -100
_RENAMEAT2_SYSCALL = {"x86_64": 316, "aarch64": 276, "riscv64": 276, "i686": 353, "armv7l": 382,
                      "ppc64le": 357, "s390x": 347}
# Where exchange gives way to two renames: no such call (ENOSYS; EPERM from some container
# filters), a file system without it (EINVAL, EOPNOTSUPP), across mounts (EXDEV).
_NO_EXCHANGE = {errno.ENOSYS, errno.EPERM, errno.EINVAL, errno.EOPNOTSUPP, errno.EXDEV}


def _renameat2():
    """libc's renameat2, or the raw system call where libc is older (glibc < 2.28); None
    outside Linux or on a processor whose call number is not known here."""
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    if not hasattr(libc, "renameat2"):
        return _renameat2_syscall(libc)
    call = libc.renameat2
    call.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    call.restype = ctypes.c_int
    return call


def _renameat2_syscall(libc):
    """renameat2 through libc's syscall(2) (same arguments), or None."""
    import ctypes
    import platform

    number = _RENAMEAT2_SYSCALL.get(platform.machine())
    if number is None:
        return None
    libc.syscall.restype = ctypes.c_long
    return lambda fd_a, a, fd_b, b, flags: libc.syscall(
        ctypes.c_long(number), ctypes.c_int(fd_a), ctypes.c_char_p(a), ctypes.c_int(fd_b),
        ctypes.c_char_p(b), ctypes.c_uint(flags))


def exchange(a, b) -> bool:
    """Swap the paths `a` and `b` (both must exist) in one step, so that neither is missing
    at any moment: Linux `renameat2(..., RENAME_EXCHANGE)`.

    Returns
    -------
    bool
        True if swapped; False, nothing changed, where the system or the file system cannot
        (the caller then renames twice).

    Raises
    ------
    OSError
        Any other failure (a missing path, a read-only file system, ...).
    """
    import ctypes

    call = _renameat2()
    if call is None:
        return False
    ctypes.set_errno(0)
    if call(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    code = ctypes.get_errno()
    if code in _NO_EXCHANGE:
        return False
    raise OSError(code, os.strerror(code), str(b))


def main(folders) -> int:
    """Remove every temporary under `folders` (the folders included); print each."""
    for root in folders:
        for where, dirs, _ in os.walk(root):
            for gone in remove_leftovers(where, everyone=True):
                print(f"removed {gone}")
                if gone.name in dirs:
                    dirs.remove(gone.name)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
