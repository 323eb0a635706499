"""`make venv` cannot be left half-built: the stamp follows an import check, a broken .venv is rebuilt.

Runs the project's real Makefile in a scratch folder against a one-package requirements file and
a wheel built here, installed with pip from that folder only (no network): first a clean build,
then a .venv whose package lost its files the way a pip killed mid-install leaves it.
"""

import base64
import hashlib
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def build_wheel(folder: Path, name="demo_pkg", version="1.0") -> Path:
    """A minimal pure-Python wheel whose module has `VALUE = 42`."""
    files = {f"{name}/__init__.py": b"VALUE = 42\n",
             f"{name}-{version}.dist-info/METADATA":
                 f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode(),
             f"{name}-{version}.dist-info/WHEEL":
                 b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"}
    record = f"{name}-{version}.dist-info/RECORD"
    lines = [f"{path},sha256={base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b'=').decode()},"
             f"{len(data)}" for path, data in files.items()] + [f"{record},,"]
    files[record] = ("\n".join(lines) + "\n").encode()
    wheel = folder / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as z:
        for path, data in files.items():
            z.writestr(path, data)
    return wheel


@pytest.fixture
def project(tmp_path):
    """A scratch project: the real Makefile and envcheck, one requirement, a local wheel."""
    (tmp_path / "mnist_cnn").mkdir()
    for name in ("__init__.py", "envcheck.py"):
        shutil.copy(ROOT / "mnist_cnn" / name, tmp_path / "mnist_cnn" / name)
    shutil.copy(ROOT / "Makefile", tmp_path / "Makefile")
    (tmp_path / "requirements.txt").write_text("demo-pkg==1.0  # the only requirement\n")
    (tmp_path / "wheels").mkdir()
    build_wheel(tmp_path / "wheels")
    return tmp_path


def _base_has_pip() -> bool:
    base = getattr(sys, "_base_executable", sys.executable)
    return subprocess.run([base, "-m", "pip", "--version"], capture_output=True).returncode == 0


# Where the base interpreter has pip, the scratch .venv borrows it (no pip copied into each
# venv: 0.5 s instead of 6 s per build); the Makefile logic under test is the same.
VENV_ARGS = "--without-pip --system-site-packages" if _base_has_pip() else ""


def make_venv(project):
    return subprocess.run(["make", "--no-print-directory", "venv", f"PYTHON={sys.executable}",
                           f"PIP_ARGS=--no-index --find-links {project / 'wheels'}",
                           f"VENV_ARGS={VENV_ARGS}"],
                          cwd=project, capture_output=True, text=True, timeout=240)


def venv_imports(project) -> bool:
    probe = subprocess.run([str(project / ".venv/bin/python"), "-c", "import demo_pkg; print(demo_pkg.VALUE)"],
                           capture_output=True, text=True, timeout=60)
    return probe.stdout.strip() == "42"


@pytest.mark.heavy
def test_half_installed_venv_is_rebuilt(project):
    first = make_venv(project)
    assert first.returncode == 0, first.stderr
    stamp = project / ".venv/.installed"
    assert stamp.is_file() and venv_imports(project)

    # A pip killed mid-install: the package is recorded (dist-info) but its files are missing,
    # and no stamp was written. pip alone would now call the requirement satisfied.
    stamp.unlink()
    package = next((project / ".venv/lib").glob("python*/site-packages/demo_pkg"))
    shutil.rmtree(package)
    assert not venv_imports(project)

    second = make_venv(project)
    assert second.returncode == 0, second.stderr
    assert "incomplete; building it afresh" in second.stderr
    assert stamp.is_file() and venv_imports(project)

    third = make_venv(project)  # whole and stamped: nothing to do
    assert third.returncode == 0 and "building" not in third.stderr


def test_envcheck_names_the_broken_requirement(project):
    from mnist_cnn import envcheck

    assert envcheck.requirements(project / "requirements.txt") == [("demo-pkg", "1.0")]
    assert envcheck.problem("demo-pkg", "1.0") == "demo-pkg is not installed"
    assert "pins 0.0.1" in envcheck.problem("pytest", "0.0.1")
    assert envcheck.problem("numpy", "") is None
