"""The installable package (pyproject.toml): its dependencies admit the pinned requirements, its
console script is the command line, and it ships the explorer's assets."""

import tomllib
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]


def _pins() -> dict:
    pins = {}
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, version = line.split("==")
            pins[name.strip().lower()] = version.strip()
    return pins


def test_dependencies_admit_the_pinned_versions():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pins = _pins()
    deps = [Requirement(d) for d in project["dependencies"]]
    for dep in deps + [Requirement(d) for d in project["optional-dependencies"]["test"]]:
        assert dep.name.lower() in pins, dep.name
        assert dep.specifier.contains(pins[dep.name.lower()]), (dep, pins[dep.name.lower()])
    test_only = {"pytest", "pytest-xdist", "selenium"}
    assert {d.name.lower() for d in deps} == set(pins) - test_only  # every runtime pin, no more


def test_console_script_is_the_command_line():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    module, _, function = config["project"]["scripts"]["mnist-cnn"].partition(":")
    import importlib

    from mnist_cnn.cli import main

    assert getattr(importlib.import_module(module), function) is main
    assert config["tool"]["setuptools"]["package-data"]["analysis.explore"] == ["assets/*"]
    assert all((ROOT / "analysis/explore/assets" / f).is_file() for f in ("site.css", "site.js"))
