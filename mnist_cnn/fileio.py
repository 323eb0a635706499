"""Atomic writes: an artefact appears complete under its final name, or not at all.

Every file the project writes goes through `atomic_path` (or the helpers built on it), so a
killed process leaves either the old file or the new one, never half of one.

A write that fails for a reason the user can act on (no space left, a read-only file system,
permission denied, a file where a folder should be: `WRITE_FAULTS`) becomes a `WriteError`, a
UserError that names the final path (never the temporary one) and the reason; the command line
prints it in one line with exit status 2. The temporary file is removed and what was at the path
before stays as it was. `check_writable` tries a folder before the expensive work starts.

What a killed process (`kill -9`, a power cut) leaves, hidden temporaries beside their final
names, is removed by the next write into the same folder: each temporary's name carries its
writer's PID and machine, so only a dead writer's are touched (`mnist_cnn.leftovers`). A folder
is replaced in one step where Linux has `renameat2(RENAME_EXCHANGE)`; elsewhere by two renames,
and a folder moved aside by a run killed between them is put back.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

from mnist_cnn.errors import UserError
from mnist_cnn.leftovers import exchange, prefix, sweep

_UMASK = os.umask(0)
os.umask(_UMASK)

# errno -> what the user can do about it (the last three: a file where a folder should be).
# Other OSErrors are bugs or read faults: not translated.
_SPACE = "free some space or write elsewhere"
_ELSEWHERE = "write elsewhere (--out / --out-dir)"
WRITE_FAULTS = {errno.ENOSPC: _SPACE, errno.EDQUOT: _SPACE, errno.EFBIG: _SPACE,
                errno.EROFS: _ELSEWHERE, errno.EACCES: _ELSEWHERE, errno.EPERM: _ELSEWHERE,
                errno.EIO: _ELSEWHERE, errno.ENOTDIR: "", errno.EEXIST: "", errno.EISDIR: ""}

# Temporary name -> final name, while an atomic write is open, so errors name the final path.
_FINAL = {}


class WriteError(UserError, OSError):
    """A file or folder could not be written: one line naming the path and the reason.

    Also an OSError, so code that already copes with a failed write (a cache that is only
    nice to have) still catches it.
    """

    def __init__(self, path, reason, hint=_ELSEWHERE, code=None):
        if code:
            OSError.__init__(self, code, reason, str(path))  # errno, strerror, filename
        self.path, self.reason = str(path), reason
        self.message = f"cannot write {path}: {reason}; {hint}"
        self.args = (self.message,)

    def __str__(self):
        return self.message


def _final_name(name) -> str:
    name = str(name)
    for tmp, final in list(_FINAL.items())[::-1]:  # innermost first: a temp inside a temp folder
        if name == tmp or name.startswith(tmp + os.sep):
            name = str(final) + name[len(tmp):]
    return name


def _file_in_the_way(path: Path):
    """The nearest of `path` and its parents that exists and is not a folder, or None."""
    for p in (path, *path.parents):
        if p.exists():  # the nearest one that exists: a file there blocks the folders below it
            return None if p.is_dir() else p
    return None


def write_error(err: OSError, path=None):
    """The WriteError for `err`, naming `path` (default: the file the error names), or None if
    `err` is not a write fault (`WRITE_FAULTS`)."""
    if not isinstance(err, OSError) or err.errno not in WRITE_FAULTS:
        return None
    name = Path(_final_name(path if path is not None else err.filename or "?"))
    if err.errno in (errno.ENOTDIR, errno.EEXIST, errno.EISDIR):
        in_the_way = _file_in_the_way(name) or _file_in_the_way(name.parent)
        what = f"{in_the_way} is a file, not a folder" if in_the_way else os.strerror(err.errno)
        return WriteError(name, what, "remove it or write elsewhere", err.errno)
    # os.strerror, not err.strerror: h5py, for one, puts a whole report of the write in it
    return WriteError(name, os.strerror(err.errno), WRITE_FAULTS[err.errno], err.errno)


def _raise_write_error(err: OSError, path, in_block=False):
    """Raise the WriteError for `err` (naming the file the error names when it has one and the
    error happened while the block wrote, else `path`), or `err` itself."""
    if isinstance(err, WriteError):  # from an inner atomic write: it named the file already
        raise err
    named = err.filename if in_block and err.filename else path
    error = write_error(err, named)
    if error is None:
        raise err
    raise error from None


def check_writable(folder, need_bytes=0):
    """Fail fast: raise WriteError unless files can be created in `folder` (or, if it does not
    exist yet, in its nearest existing parent, where it will be created) with `need_bytes` free.

    The test is a real one: a small file is written and removed (permissions alone say nothing
    for root, and nothing about a read-only mount or a full disk).
    """
    folder = Path(folder)
    where = folder
    while not where.exists() and where != where.parent:
        where = where.parent
    if not where.is_dir():
        raise WriteError(folder, f"{where} is a file, not a folder", "remove it or write elsewhere")
    try:
        fd, probe = tempfile.mkstemp(prefix=prefix("write-check"), dir=where)
        try:
            os.write(fd, bytes(4096))  # a full file system refuses the first block
        finally:
            os.close(fd)
            os.unlink(probe)
    except OSError as e:
        # `where` is an existing folder, so any refusal to create a file in it is a write
        # fault, also one outside WRITE_FAULTS (e.g. ENOENT from /proc or /sys).
        raise (write_error(e, folder)
               or WriteError(folder, "no file can be created there "
                                     f"({os.strerror(e.errno) if e.errno else e})", _ELSEWHERE,
                             e.errno)) from None
    free = shutil.disk_usage(where).free
    if free < need_bytes:
        raise WriteError(folder, f"only {free / 1e6:.1f} MB free on its file system, about "
                                 f"{need_bytes / 1e6:.1f} MB needed", _SPACE)


@contextlib.contextmanager
def atomic_path(path, suffix=None):
    """Yield a temporary path beside `path`; rename it onto `path` if the block succeeds.

    Parameters
    ----------
    path : str or Path
        Final destination.
    suffix : str, optional
        Suffix of the temporary name (default: the final suffix, which libraries such as
        Keras and Matplotlib use to pick the format).

    Yields
    ------
    Path
        Where to write. Removed again if the block raises; removed by the next write into the
        same folder if the process is killed (`mnist_cnn.leftovers`).

    Raises
    ------
    WriteError
        If the block or the rename fails with a write fault (`WRITE_FAULTS`).
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        sweep(path.parent)
        fd, tmp = tempfile.mkstemp(prefix=prefix(path.name),
                                   suffix=suffix or path.suffix or ".tmp", dir=path.parent)
    except OSError as e:
        _raise_write_error(e, path)
    os.close(fd)
    tmp = Path(tmp)
    _FINAL[str(tmp)] = path
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; give the usual permissions
        os.replace(tmp, path)
    except OSError as e:
        _raise_write_error(e, path, in_block=True)
    finally:
        _FINAL.pop(str(tmp), None)
        if tmp.exists():
            tmp.unlink()


@contextlib.contextmanager
def atomic_dir(path):
    """Yield a temporary folder beside `path`; on success it replaces `path` whole.

    The old and the new folder are swapped in one step (`leftovers.exchange`); where the file system
    cannot, the old one is renamed aside first, and a run killed between the two renames
    leaves it aside (`.NAME.old.*`), where the next write beside `path` finds it and puts it
    back. What a killed run leaves beside `path` is removed by the next (`mnist_cnn.leftovers`).

    A write fault in the block or the swap raises WriteError naming the file under `path` that
    could not be written; the temporary folder is removed and `path` stays as it was.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():  # never replace a file by a folder
        raise WriteError(path, "it is a file, not a folder", "remove it or write elsewhere")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        sweep(path.parent, again=True)  # also puts back a folder a killed swap moved aside
        tmp = Path(tempfile.mkdtemp(prefix=prefix(path.name), dir=path.parent))
    except OSError as e:
        _raise_write_error(e, path)
    _FINAL[str(tmp)] = path
    try:
        yield tmp
        if not path.exists():
            os.replace(tmp, path)
        elif not exchange(tmp, path):  # (swapped: tmp holds the old folder, removed below)
            old = Path(tempfile.mkdtemp(prefix=prefix(path.name, old=True), dir=path.parent))
            os.replace(path, old / path.name)
            os.replace(tmp, path)
            shutil.rmtree(old)
    except OSError as e:
        _raise_write_error(e, path, in_block=True)
    finally:
        _FINAL.pop(str(tmp), None)
        if tmp.is_symlink():  # `path` was a link to a folder, swapped out
            tmp.unlink()
        elif tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


@contextlib.contextmanager
def atomic_group():
    """Files that change together: yields `stage(path) -> temporary path` (see `atomic_path`).

    Each staged file is written beside its final name; only when the whole block succeeds are
    they renamed into place, so a disk that fills up halfway leaves the previous set whole.
    """
    with contextlib.ExitStack() as stack:
        yield lambda path, suffix=None: stack.enter_context(atomic_path(path, suffix))


def write_bytes(path, data: bytes):
    """Write `data` to `path` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_json(path, obj):
    """Write `obj` as indented JSON to `path` atomically."""
    write_bytes(path, (json.dumps(obj, indent=2, sort_keys=False) + "\n").encode())


def save_figure(fig, path, dpi=110):
    """Save a Matplotlib figure atomically, cropped to what is drawn, and close it.

    A PNG drawn inside the figure is drawn once and cropped on whole pixels to its tight box
    (`savefig(bbox_inches="tight")` draws twice); drawings past the edge and other formats: savefig.

    Parameters
    ----------
    fig : matplotlib.figure.Figure; path : the file (.png or a `savefig` format); dpi : float

    Returns
    -------
    None
    """
    import matplotlib.pyplot as plt

    with atomic_path(path) as tmp:
        if Path(path).suffix.lower() != ".png" or not _save_png_cropped(fig, tmp, dpi):
            fig.savefig(tmp, dpi=dpi, bbox_inches="tight")
    plt.close(fig)


def _save_png_cropped(fig, tmp, dpi) -> bool:
    """Draw `fig` once at `dpi`, write its tight box as a PNG to `tmp` (padding beyond the edge
    in the face colour, as `savefig`); False, nothing written, where the drawing leaves it."""
    import math

    import matplotlib.image
    import numpy as np
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.colors import to_rgba

    fig.set_dpi(dpi)
    canvas = fig.canvas if isinstance(fig.canvas, FigureCanvasAgg) else FigureCanvasAgg(fig)
    canvas.draw()
    box = fig.get_tightbbox(canvas.get_renderer())
    width, height = fig.get_size_inches()
    if box.x0 < 0 or box.y0 < 0 or box.x1 > width or box.y1 > height:
        return False
    box = box.padded(matplotlib.rcParams["savefig.pad_inches"])
    rgba = np.asarray(canvas.buffer_rgba())
    rows, cols = rgba.shape[:2]
    left, right = math.floor(box.x0 * dpi), math.ceil(box.x1 * dpi)
    top, bottom = math.floor(rows - box.y1 * dpi), math.ceil(rows - box.y0 * dpi)
    out = np.empty((bottom - top, right - left, 4), np.uint8)
    out[...] = np.round(np.asarray(to_rgba(fig.get_facecolor())) * 255)
    r0, c0 = max(top, 0), max(left, 0)
    out[r0 - top:min(bottom, rows) - top, c0 - left:min(right, cols) - left] = \
        rgba[r0:min(bottom, rows), c0:min(right, cols)]
    matplotlib.image.imsave(tmp, out, format="png", origin="upper", dpi=dpi)
    return True


def save_npz(path, **arrays):
    """Save arrays to an .npz atomically (no pickles inside)."""
    import numpy as np

    with atomic_path(path) as tmp:
        np.savez_compressed(tmp, **arrays)


def sha256_file(path, chunk=1 << 20) -> str:
    """SHA-256 hex digest of a file."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def _open_locked(lock: Path):
    """Open `lock` and flock it: (file, whether this call created the file), or (None, file)
    if another process holds it (the file open, for its holder's line). Retried until the file
    locked is the one under the name: a holder removes it when done, possibly after this
    process opened it and before it got the lock."""
    import fcntl

    for attempt in range(100):
        try:
            lock.parent.mkdir(parents=True, exist_ok=True)
            try:
                fd, created = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o666), True
            except FileExistsError:
                fd, created = os.open(lock, os.O_RDWR), False
        except FileNotFoundError:  # removed meanwhile, or its folder, by a run that made them
            if attempt == 99:
                raise
            continue
        f = open(fd, "r+")
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return None, f
        try:
            now = os.stat(lock)
        except FileNotFoundError:
            now = None
        mine = os.fstat(f.fileno())
        if now is not None and (now.st_dev, now.st_ino) == (mine.st_dev, mine.st_ino):
            return f, created
        f.close()
    raise OSError(errno.EAGAIN, "the lock file keeps changing", str(lock))


@contextlib.contextmanager
def exclusive_lock(folder, what="training"):
    """Hold an exclusive lock on `folder` for the block: one writer per output folder.

    The lock is an advisory `flock` on `folder/.lock`, so the OS releases it when the process
    dies, however it dies; a stale file never blocks anyone. A second process that asks for the
    same folder gets a UserError naming the one that holds it. When the block ends the holder
    removes the file (still holding it: one that opened it meanwhile tries again), and the
    folder too if the lock made it and nothing else was written there: a refused or failed run
    into a new folder leaves nothing. Only an empty `.lock` of an earlier version, which kept
    it, is kept as it was.
    """
    folder = Path(folder)
    made = [p for p in (folder, *folder.parents) if not p.exists()]
    try:
        f, created = _open_locked(folder / ".lock")
    except OSError as e:
        _raise_write_error(e, folder)
    if f is None:
        with created:
            holder = created.read().strip() or "another process"
        raise UserError(f"{folder}/ is in use by {holder}; wait for it to finish "
                        "or write elsewhere (--out-dir)") from None
    with f:  # closing it releases the lock
        import time

        remove = created or bool(f.read())  # a line of a holder killed before its release
        f.seek(0)
        f.truncate()
        f.write(f"{what} pid {os.getpid()} (started {time.strftime('%H:%M:%S')}: "
                f"{' '.join(sys.argv) or 'python'})\n")
        f.flush()
        try:
            yield
        finally:
            if remove:
                (folder / ".lock").unlink(missing_ok=True)
            else:
                f.seek(0)
                f.truncate()
            for p in made:  # innermost first, each only if empty
                try:
                    p.rmdir()
                except OSError:
                    break
