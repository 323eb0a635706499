"""The layout the architecture page promises (docs/architecture.md), read from the source: the
layers (core, shared analysis modules, analyses, page writers, command line) and which way they
import, no import circles at module level, no module over 400 lines, no command-line plumbing
below mnist_cnn/app/. Static (ast), so it costs no TensorFlow and sees every import order at
once: a circle only fails at run time when one of its modules happens to be imported first."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("mnist_cnn", "analysis")


def modules() -> dict:
    """{dotted name: path} of every module of the project's packages."""
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def top_level_imports(name: str, path: Path, known) -> set:
    """Project modules `name` imports when it is loaded (imports inside functions are lazy on
    purpose and do not count), with the packages whose __init__ that runs (except its own)."""
    tree = ast.parse(path.read_text())
    is_package = path.name == "__init__.py"
    targets = set()
    for node in tree.body:
        if isinstance(node, ast.Import):
            targets |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            targets.add(node.module)
            targets |= {f"{node.module}.{a.name}" for a in node.names}
    own = name if is_package else name.rpartition(".")[0]
    ancestors = {".".join(own.split(".")[:i]) for i in range(1, own.count(".") + 2)}
    edges = set()
    for target in targets & set(known):
        parts = target.split(".")
        edges |= {".".join(parts[:i]) for i in range(1, len(parts) + 1)} - ancestors
    return edges - {name}


# The layers, bottom to top (docs/architecture.md). A module imports only its own layer or those
# below it (lazy imports inside functions count: they run too), page writers never import each
# other, and the lazy APIs `mnist_cnn` and `analysis` (their __init__ import nothing) belong to none.
LAYERS = ("core", "shared", "analysis", "page writer", "command line")
SHARED = ("analysis.feature_maps", "analysis.compare", "analysis.plots", "analysis.pictures",
          "analysis.site", "analysis.html")
ANALYSES = ("analysis.oip", "analysis.attribution", "analysis.experiments", "analysis.concepts")
PAGE_WRITERS = ("analysis.report", "analysis.predict", "analysis.explore")
COMMAND_LINE = ("mnist_cnn.app", "mnist_cnn.bench", "mnist_cnn.cli", "mnist_cnn.__main__")
API_ROOTS = ("mnist_cnn", "analysis")


def _under(name: str, prefixes) -> str | None:
    """The prefix (a package or module) of `prefixes` that `name` is or is inside, else None;
    "mnist_cnn.bench" also covers a bench package or bench_* modules beside it."""
    for prefix in prefixes:
        if name == prefix or name.startswith(prefix + ".") or (
                prefix == "mnist_cnn.bench" and name.startswith(prefix)):
            return prefix
    return None


def layer_of(name: str):
    """(rank in LAYERS, the package or module that is its unit), or None for the API roots."""
    if name in API_ROOTS:
        return None
    for rank, units in ((4, COMMAND_LINE), (1, SHARED), (2, ANALYSES), (3, PAGE_WRITERS)):
        unit = _under(name, units)
        if unit:
            return rank, unit
    if name.startswith("mnist_cnn."):
        return 0, "mnist_cnn"
    raise AssertionError(f"{name} is in no layer: place it in tests/test_layout.py's layers "
                         "and in docs/architecture.md")


def all_imports(name: str, path: Path, known) -> set:
    """Project modules `name` imports anywhere (module level and inside functions), with the
    packages above them whose __init__ runs; relative imports resolved."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    targets = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            targets.add(base)
            targets |= {f"{base}.{a.name}" for a in node.names}
    edges = set()
    for target in targets:
        parts = target.split(".")
        edges |= {".".join(parts[:i]) for i in range(1, len(parts) + 1)}
    return (edges & set(known)) - {name}


def layer_violations(known) -> list:
    """Every import that goes up a layer or from one page writer into another, as lines."""
    found = []
    for name, path in sorted(known.items()):
        here = layer_of(name)
        if here is None:
            continue
        for target in sorted(all_imports(name, path, known)):
            there = layer_of(target)
            if there is None or there[1] == here[1]:
                continue
            if there[0] > here[0]:
                found.append(f"{name} ({LAYERS[here[0]]}) imports {target} "
                             f"({LAYERS[there[0]]}, a layer above)")
            elif here[0] == there[0] == 3:
                found.append(f"{name} imports {target}: page writers never import each other")
    return found


def test_every_import_goes_down_the_layers():
    assert not layer_violations(modules()), "\n".join(layer_violations(modules()))


def test_the_layer_check_finds_planted_violations(tmp_path):
    """An analysis importing a page writer (lazily, in a function), one page writer importing
    another, the core importing analysis: each is named; downward imports pass."""
    files = {
        "analysis/oip/leak.py": "def f():\n    from analysis.report.html import page\n",
        "analysis/oip/fine.py": "from analysis.plots import x\nimport mnist_cnn.model\n",
        "analysis/report/html.py": "from analysis.explore import render\n",
        "analysis/explore/render.py": "from . import svg\n",
        "analysis/explore/svg.py": "",
        "analysis/explore/__init__.py": "",
        "analysis/plots.py": "",
        "mnist_cnn/model.py": "def g():\n    import analysis.plots\n",
        "mnist_cnn/app/run.py": "from analysis.explore.render import x\n",
    }
    known = {}
    for rel, text in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
        parts = Path(rel).with_suffix("").parts
        known[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = tmp_path / rel
    found = layer_violations(known)
    assert found == [
        "analysis.oip.leak (analysis) imports analysis.report.html (page writer, a layer above)",
        "analysis.report.html imports analysis.explore: page writers never import each other",
        "analysis.report.html imports analysis.explore.render: page writers never import each "
        "other",
        "mnist_cnn.model (core) imports analysis.plots (shared, a layer above)"], found
    assert all_imports("analysis.explore.render", known["analysis.explore.render"], known) \
        == {"analysis.explore", "analysis.explore.svg"}  # relative import resolved


def test_no_import_circles():
    known = modules()
    graph = {name: top_level_imports(name, path, known) for name, path in known.items()}
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                circle = stack[stack.index(nxt):] + [nxt]
                raise AssertionError("import circle: " + " -> ".join(circle))
            if nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = "done"

    for name in sorted(graph):
        if name not in state:
            visit(name)


def test_the_check_finds_a_circle(tmp_path, monkeypatch):
    """The graph sees a circle through a package's __init__ (as report <-> attribution was)."""
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "__init__.py").write_text("from a.sections import x\n")
    (tmp_path / "a" / "sections.py").write_text("from b.section import x\n")
    (tmp_path / "a" / "context.py").write_text("")
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "__init__.py").write_text("")
    (tmp_path / "b" / "section.py").write_text("from a.context import y\n")
    known = {"a": tmp_path / "a/__init__.py", "a.sections": tmp_path / "a/sections.py",
             "a.context": tmp_path / "a/context.py", "b": tmp_path / "b/__init__.py",
             "b.section": tmp_path / "b/section.py"}
    assert "a" in top_level_imports("b.section", known["b.section"], known)
    assert "a" not in top_level_imports("a.sections", known["a.sections"], known)  # own package


def test_modules_are_short_and_argparse_stays_in_the_command_line():
    entry_points = ("mnist_cnn.cli", "mnist_cnn.__main__")
    for name, path in modules().items():
        text = path.read_text()
        assert len(text.splitlines()) <= 400, f"{name} has {len(text.splitlines())} lines"
        if name.startswith("mnist_cnn.app") or name in entry_points:
            continue
        imported = set()
        for node in ast.walk(ast.parse(text)):  # lazy imports inside functions too
            if isinstance(node, ast.Import):
                imported |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module:
                imported.add(node.module)
        below = {m for m in imported if m == "argparse" or m.startswith("mnist_cnn.app")}
        assert not below, f"{name} imports {sorted(below)}: only mnist_cnn/app/ parses commands"


def test_no_private_name_is_imported_from_another_package():
    """`from pkg.mod import _name` only within the package that owns `_name` (module-level and
    function-level imports alike): what a sibling needs is public (issue 24)."""
    import ast

    crossings = []
    for path in sorted([*ROOT.joinpath("mnist_cnn").rglob("*.py"),
                        *ROOT.joinpath("analysis").rglob("*.py")]):
        here = ".".join(path.relative_to(ROOT).parent.parts)
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                owner = node.module.rsplit(".", 1)[0]
                for alias in node.names:
                    if alias.name.startswith("_") and not alias.name.startswith("__") \
                            and owner != here:
                        crossings.append(f"{path.relative_to(ROOT)}: {node.module}.{alias.name}")
    assert not crossings, crossings


def test_no_namespace_below_the_command_line():
    """Below mnist_cnn/app/ functions take plain values: no `args.x`, no `getattr(args, ...)`
    (issue 24: analysis.predict took the Namespace)."""
    import ast

    found = []
    for name, path in modules().items():
        if name.startswith("mnist_cnn.app") or name == "mnist_cnn.cli":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) \
                    and node.value.id == "args":
                found.append(f"{path.relative_to(ROOT)}:{node.lineno} args.{node.attr}")
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "getattr" \
                    and node.args and getattr(node.args[0], "id", None) == "args":
                found.append(f"{path.relative_to(ROOT)}:{node.lineno} getattr(args, ...)")
    assert not found, found
