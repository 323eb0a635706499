"""Is this environment whole? `python -m mnist_cnn.envcheck [requirements.txt]`, run by `make`.

pip records a package as installed before all of its files are in place, so a `make` killed
while pip installs (Ctrl-C, `timeout`) can leave a `.venv` where `pip install` says "already
satisfied" but `import tensorflow` is broken for good. The Makefile writes its stamp only after
this check passes and rebuilds a `.venv` that fails it. For every pinned requirement it checks
the installed version and imports the package; it prints one line and exits 1 on the first
problem, 0 when all are fine.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import re
import sys

# Distribution name -> module to import, where they differ.
MODULES = {"scikit-learn": "sklearn", "pillow": "PIL", "tensorflow": "tensorflow.config",
           "pytest-xdist": "xdist", "scikit-image": "skimage"}


def requirements(path) -> list[tuple[str, str]]:
    """(name, pinned version or "") for each requirement line of `path`."""
    found = []
    for line in open(path):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        match = re.fullmatch(r"([A-Za-z0-9_.\-]+)(?:\[[^\]]*\])?\s*(?:==\s*([^\s;]+))?.*", line)
        if match:
            found.append((match.group(1), match.group(2) or ""))
    return found


def problem(name: str, pinned: str) -> str | None:
    """What is wrong with requirement `name` here, or None."""
    try:
        installed = importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return f"{name} is not installed"
    if pinned and installed != pinned:
        return f"{name} {installed} is installed, requirements.txt pins {pinned}"
    module = MODULES.get(name.lower(), name.lower().replace("-", "_"))
    try:
        importlib.import_module(module)
    except Exception as e:  # a half-installed package fails in many ways; all mean "reinstall"
        return f"{name} {installed} does not import ({type(e).__name__}: {str(e)[:100]})"
    return None


def main(argv=None) -> int:
    path = (argv or sys.argv[1:] or ["requirements.txt"])[0]
    for name, pinned in requirements(path):
        if (why := problem(name, pinned)):
            print(f"envcheck: {why}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
