"""What a killed run leaves, and that the next run (or `make clean`) clears it.

* A training killed (SIGKILL) while it writes its final files: the earlier model stays
  byte-identical, and the next training into the same folder leaves no hidden file.
* A folder swap (`fileio.atomic_dir`) done in one step (`renameat2(RENAME_EXCHANGE)`), or by two
  renames where the file system cannot (EINVAL, ENOSYS, EXDEV, ...); a run killed between the
  two renames or right after the swap: the previous folder is back, or the new one in place,
  after the next run, with nothing hidden left.
* Temporaries of live writers, of other machines and of an earlier version are left alone by
  runs; `make clean` removes them.
* The lock: no `.lock` (nor a folder it made) left by a failed, refused or finished run; the
  file a holder removed while another process was opening it is not the one that process locks.
"""

import errno
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mnist_cnn import fileio, leftovers
from mnist_cnn.errors import UserError
from mnist_cnn.fileio import WriteError, atomic_dir, atomic_path, exclusive_lock, sha256_file

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--epochs", "1", "--train-limit", "128", "--batch-size", "32", "--val-size", "64",
        "--precision", "float32", "--no-augment", "--warmup-epochs", "0",
        "--steps-per-execution", "1"]


def hidden(folder) -> list:
    """Every hidden file or folder under `folder`, relative."""
    return sorted(str(p.relative_to(folder)) for p in Path(folder).rglob(".*"))


def tree(folder) -> dict:
    folder = Path(folder)
    return {str(p.relative_to(folder)): sha256_file(p) if p.is_file() else None
            for p in sorted(folder.rglob("*"))}


def python(code, *args):
    """Run `code` with `args` in a fresh Python with the project importable."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                          timeout=60, env=env)


def dead_pid() -> int:
    """The PID of a process that has ended (and been reaped)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


# 1. A training killed while it writes its final files

# The killed training: the first 2000 test images and empty figures (their drawing is tested
# elsewhere), as tests/conftest.py's first_test_images and test_faults do in-process.
_TRAIN = """
import sys
import matplotlib.pyplot as plt
from mnist_cnn import data, training
load = data.load_dataset
def first_2000(*args, **kwargs):
    fit, (x, y) = load(*args, **kwargs)
    return fit, (x[:2000], y[:2000])
data.load_dataset = training.load_dataset = first_2000
training.plot_confusion = training.plot_learning_curves = lambda *a, **k: plt.figure(figsize=(1, 1))
from mnist_cnn.cli import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.heavy
def test_a_training_killed_in_its_final_writes_and_the_next_one(
        tmp_path, untrained_mnist_model_path, first_test_images, monkeypatch, run_main):
    import matplotlib.pyplot as plt

    from mnist_cnn import training

    out = tmp_path / "models"
    out.mkdir()
    shutil.copy(untrained_mnist_model_path, out / "mnist_cnn.keras")
    earlier = sha256_file(out / "mnist_cnn.keras")
    argv = ["train", *TINY, "--out-dir", str(out)]

    def temporaries():  # of the final writes (not the lock, nor the early write checks)
        return [p for p in hidden(out) if "/" not in p and p != ".lock"
                and not p.startswith(".write-check.")]
    log = open(tmp_path / "stderr.txt", "w+")  # a file: a full pipe would stall the run
    run = subprocess.Popen([sys.executable, "-c", _TRAIN, *argv], stdout=subprocess.DEVNULL,
                           stderr=log, env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        deadline = time.monotonic() + 120
        while not temporaries():
            assert run.poll() is None, "the training ended first: " + \
                (tmp_path / "stderr.txt").read_text()[-2000:]
            assert time.monotonic() < deadline, "no temporary file appeared"
            time.sleep(0.002)
        run.send_signal(signal.SIGKILL)  # the first final file is being written
    finally:
        run.kill()
        run.wait(timeout=30)
        log.close()
    assert run.returncode == -signal.SIGKILL
    left = temporaries()
    assert any(p.startswith(".mnist_cnn.keras.") for p in left), left  # killed in the writes
    assert sha256_file(out / "mnist_cnn.keras") == earlier  # never half-written

    for name in ("plot_confusion", "plot_learning_curves"):
        monkeypatch.setattr(training, name, lambda *args, **kwargs: plt.figure(figsize=(1, 1)))
    rc, err = run_main(argv)
    assert rc == 0, err
    assert hidden(out) == []  # the killed run's temporaries, its lock: gone
    assert sha256_file(out / "mnist_cnn.keras") != earlier
    assert {"mnist_cnn.keras", "metrics.json", "history.json"} <= set(os.listdir(out))


# 2. Folder swaps

def a_report(folder, text):
    (folder / "sub").mkdir(parents=True)
    (folder / "index.html").write_text(text)
    (folder / "sub" / "a.png").write_bytes(text.encode() * 10)


def can_exchange(where) -> bool:
    a, b = Path(where) / "probe-a", Path(where) / "probe-b"
    a.mkdir()
    b.mkdir()
    try:
        return leftovers.exchange(a, b)
    finally:
        a.rmdir()
        b.rmdir()


def test_a_folder_is_replaced_in_one_step(tmp_path, monkeypatch):
    """renameat2(RENAME_EXCHANGE): no rename of the folder itself, so it is never missing."""
    if not can_exchange(tmp_path):
        pytest.skip(f"the file system of {tmp_path} cannot exchange folders")
    report = tmp_path / "report"
    a_report(report, "earlier")
    renamed = []
    for name in ("replace", "rename"):
        real = getattr(os, name)

        def spy(src, dst, *args, _real=real, **kwargs):
            renamed.append(Path(dst))
            return _real(src, dst, *args, **kwargs)
        monkeypatch.setattr(os, name, spy)
    with atomic_dir(report) as tmp:
        a_report(tmp, "new")
    assert report not in renamed and (report / "index.html").read_text() == "new"
    assert os.listdir(tmp_path) == ["report"]


def test_the_system_call_exchanges_where_libc_has_no_renameat2(tmp_path):
    """glibc before 2.28 has no renameat2: the raw system call does the same."""
    import ctypes
    import platform

    call = leftovers._renameat2_syscall(ctypes.CDLL(None, use_errno=True))
    if call is None or not sys.platform.startswith("linux"):
        pytest.skip(f"no renameat2 call number known for {platform.machine()}")
    if not can_exchange(tmp_path):
        pytest.skip(f"the file system of {tmp_path} cannot exchange folders")
    a_report(tmp_path / "a", "a")
    a_report(tmp_path / "b", "b")
    assert call(-100, bytes(tmp_path / "a"), -100, bytes(tmp_path / "b"), 2) == 0
    assert [(tmp_path / n / "index.html").read_text() for n in "ab"] == ["b", "a"]


def test_a_link_to_a_folder_is_replaced_by_the_folder(tmp_path):
    a_report(tmp_path / "elsewhere", "earlier")
    (tmp_path / "report").symlink_to(tmp_path / "elsewhere")
    with atomic_dir(tmp_path / "report") as tmp:
        a_report(tmp, "new")
    assert not (tmp_path / "report").is_symlink()
    assert (tmp_path / "report" / "index.html").read_text() == "new"
    assert (tmp_path / "elsewhere" / "index.html").read_text() == "earlier"
    assert sorted(os.listdir(tmp_path)) == ["elsewhere", "report"]


class FakeRenameat2:
    """renameat2 that fails with `code`, as a kernel or file system without it does."""

    def __init__(self, code):
        self.code, self.calls = code, 0

    def __call__(self, *args):
        import ctypes

        self.calls += 1
        ctypes.set_errno(self.code)
        return -1


@pytest.mark.parametrize("code", ["EINVAL", "ENOSYS", "EXDEV", "EOPNOTSUPP"])
def test_without_exchange_two_renames_replace_the_folder(tmp_path, monkeypatch, code):
    fake = FakeRenameat2(getattr(errno, code))
    monkeypatch.setattr(leftovers, "_renameat2", lambda: fake)
    report = tmp_path / "report"
    a_report(report, "earlier")
    with atomic_dir(report) as tmp:
        a_report(tmp, "new")
    assert fake.calls == 1 and (report / "index.html").read_text() == "new"
    assert os.listdir(tmp_path) == ["report"]


def test_a_failing_exchange_is_a_write_error_and_keeps_the_folder(tmp_path, monkeypatch):
    monkeypatch.setattr(leftovers, "_renameat2", lambda: FakeRenameat2(errno.EROFS))
    report = tmp_path / "report"
    a_report(report, "earlier")
    before = tree(tmp_path)
    with pytest.raises(WriteError, match=f"cannot write {report}: Read-only file system"):
        with atomic_dir(report) as tmp:
            a_report(tmp, "new")
    assert tree(tmp_path) == before


# A swap in a fresh Python that SIGKILLs itself at a given step.
_KILLED_SWAP = """
import os, shutil, signal, sys
from pathlib import Path
from mnist_cnn import fileio
report, step = Path(sys.argv[1]), sys.argv[2]
die = lambda: os.kill(os.getpid(), signal.SIGKILL)
if step == "between the renames":
    fileio.exchange = lambda a, b: False  # the file system cannot: two renames
    replace = os.replace
    def between(src, dst):
        if Path(dst) == report:  # the second rename, the first done
            die()
        replace(src, dst)
    os.replace = between
else:  # right after the exchange, before the old folder is removed
    shutil.rmtree = lambda *args, **kwargs: die()
with fileio.atomic_dir(report) as tmp:
    (tmp / "sub").mkdir()
    (tmp / "index.html").write_text("new")
    (tmp / "sub" / "a.png").write_bytes(b"new" * 10)
"""


def test_a_kill_between_the_two_renames_is_undone_by_the_next_run(tmp_path):
    report = tmp_path / "report"
    a_report(report, "earlier")
    before = tree(report)
    assert python(_KILLED_SWAP, str(report), "between the renames").returncode == -9
    assert not report.exists()  # the moment the two renames have: the old one is aside
    aside, = [p for p in tmp_path.iterdir() if p.name.startswith(".report.old.")]
    assert tree(aside / "report") == before
    with pytest.raises(RuntimeError):  # the next run (which fails, even): the folder is back
        with atomic_dir(report):
            assert tree(report) == before
            raise RuntimeError("a failed run")
    assert tree(report) == before and os.listdir(tmp_path) == ["report"]
    with atomic_dir(report) as tmp:
        a_report(tmp, "new")
    assert (report / "index.html").read_text() == "new" and os.listdir(tmp_path) == ["report"]


def test_a_kill_right_after_the_exchange_leaves_the_new_folder(tmp_path):
    if not can_exchange(tmp_path):
        pytest.skip(f"the file system of {tmp_path} cannot exchange folders")
    report = tmp_path / "report"
    a_report(report, "earlier")
    earlier = tree(report)
    assert python(_KILLED_SWAP, str(report), "after the exchange").returncode == -9
    assert (report / "index.html").read_text() == "new"
    old, = [p for p in tmp_path.iterdir() if p.name != "report"]
    assert old.name.startswith(".report.") and tree(old) == earlier
    with atomic_dir(tmp_path / "other") as tmp:  # any write beside it clears it
        (tmp / "x").write_text("x")
    assert sorted(os.listdir(tmp_path)) == ["other", "report"]


# 3. Whose temporaries a run removes, and make clean


def test_only_dead_writers_temporaries_on_this_machine_are_removed(tmp_path):
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        here, dead = leftovers.machine(), dead_pid()
        names = {
            f".mnist_cnn.keras.{dead}-{here}.a24ul1u9.keras": "removed",  # a killed writer's
            f".metrics.json.{dead}-{here}.k2j3h4l5.json": "removed",
            f".report.{dead}-{here}.q8w7e6r5": "removed",  # an atomic_dir's temporary folder
            f".mnist_cnn.keras.{sleeper.pid}-{here}.zx12cv34.keras": "kept",  # alive
            f".mnist_cnn.keras.{dead}-{'0' if here != '000000' else '1'}{here[1:]}"
            ".poiu0987.keras": "kept",  # another machine's: its PIDs mean nothing here
            ".mnist_cnn.keras.a24ul1u9.keras": "kept",  # an earlier version's: no writer named
            ".DS_Store": "kept", "notes.txt": "kept",
        }
        for name in names:
            if "report" in name:
                (tmp_path / name).mkdir()
                (tmp_path / name / "index.html").write_text("half a report")
            else:
                (tmp_path / name).write_bytes(b"half a file")
        with atomic_path(tmp_path / "mnist_cnn.keras") as tmp:
            tmp.write_bytes(b"a model")
        assert sorted(os.listdir(tmp_path)) == sorted(
            [n for n, fate in names.items() if fate == "kept"] + ["mnist_cnn.keras"])
    finally:
        sleeper.kill()
        sleeper.wait()


def test_make_clean_removes_every_temporary(tmp_path):
    models, bench = tmp_path / "models", tmp_path / "bench"
    (models / "fashion").mkdir(parents=True)
    bench.mkdir()
    for keep in (models / "mnist_cnn.keras", models / ".gitkeep", models / "fashion" / "x.json",
                 bench / "notes.md"):
        keep.write_text("kept")
    temporaries = [models / ".mnist_cnn.keras.a24ul1u9.keras",  # an earlier version's
                   models / f".metrics.json.{os.getpid()}-{leftovers.machine()}.k2j3h4l5.json",
                   models / "fashion" / ".history.json.1-abcdef.zz99yy88.json",
                   bench / ".results.json.q1w2e3r4.json"]
    for t in temporaries:
        t.write_text("half")
    (models / ".report.old.abcdefgh" / "report").mkdir(parents=True)  # earlier, killed swap
    shutil.copy(ROOT / "Makefile", tmp_path / "Makefile")
    done = subprocess.run(["make", "-s", "--no-print-directory", "clean",
                           f"PYTHON={sys.executable}"], cwd=tmp_path, capture_output=True,
                          text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr
    assert hidden(tmp_path) == ["models/.gitkeep"]
    assert (models / "report").is_dir()  # put back first
    for kept in ("models/mnist_cnn.keras", "models/fashion/x.json", "bench/notes.md"):
        assert (tmp_path / kept).read_text() == "kept"


# 4. The lock


def test_a_failed_run_into_a_new_folder_leaves_nothing(tmp_path):
    new = tmp_path / "a" / "b" / "models"
    with pytest.raises(RuntimeError):
        with exclusive_lock(new):
            assert (new / ".lock").read_text().startswith(f"training pid {os.getpid()} ")
            raise RuntimeError("the training failed")
    assert os.listdir(tmp_path) == []  # nor the folders the lock made
    with exclusive_lock(new):
        (new / "mnist_cnn.keras").write_text("a model")
    assert os.listdir(new) == ["mnist_cnn.keras"]  # a finished run: its files, no lock


def test_earlier_lock_files(tmp_path):
    """An earlier version's empty .lock stays as it was (a refused write changes nothing);
    the line of a holder killed before its release goes with the next holder."""
    (tmp_path / ".lock").touch()
    with exclusive_lock(tmp_path):
        pass
    assert (tmp_path / ".lock").read_text() == ""
    (tmp_path / ".lock").write_text("training pid 99999999 (started 10:00:00: killed)\n")
    with exclusive_lock(tmp_path):
        pass
    assert not (tmp_path / ".lock").exists()


def test_a_refused_run_leaves_the_holders_lock_and_the_holder_none(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys; from mnist_cnn.fileio import exclusive_lock\n"
        f"with exclusive_lock({str(tmp_path / 'models')!r}):\n"
        "    print('held', flush=True); sys.stdin.readline()")],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(UserError, match=f"in use by training pid {holder.pid} "):
            with exclusive_lock(tmp_path / "models"):
                pass
        assert (tmp_path / "models" / ".lock").read_text().startswith(f"training pid {holder.pid}")
        holder.stdin.write("done\n")
        holder.stdin.flush()
        assert holder.wait(timeout=30) == 0
    finally:
        holder.kill()
    assert not (tmp_path / "models").exists()


def test_a_lock_file_removed_while_it_was_being_opened_is_not_the_one_locked(tmp_path,
                                                                             monkeypatch):
    """The holder removes .lock when done; one that opened it just before then gets its flock
    on the removed file, which locks nothing anyone else sees: it must open the name again."""
    import fcntl

    lock, real, swapped = tmp_path / ".lock", fcntl.flock, []
    lock.write_text("training pid 1 (the holder, finishing)\n")

    def flock(f, flags):
        if not swapped:  # the holder finishes between our open and our flock
            swapped.append(os.fstat(f.fileno()).st_ino)
            lock.unlink()
            lock.write_text("")  # and the next one already made a new file
        return real(f, flags)
    monkeypatch.setattr(fcntl, "flock", flock)
    f, created = fileio._open_locked(lock)
    with f:
        assert os.fstat(f.fileno()).st_ino == lock.stat().st_ino != swapped[0]
        assert created is False
