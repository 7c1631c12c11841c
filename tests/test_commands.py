"""Command-line code lives in ``asteroid_spmamba/commands/`` only: no library module imports it."""

import ast
from pathlib import Path

import asteroid_spmamba

PACKAGE = Path(asteroid_spmamba.__file__).resolve().parent
FORBIDDEN = ("asteroid_spmamba.commands", "asteroid_spmamba.cli")
# ``python -m asteroid_spmamba`` runs the command line: an entry point, not a library module.
ENTRY_POINTS = {"asteroid_spmamba/__main__.py"}


def _imported_modules(path: Path) -> list[str]:
    """Absolute names of the modules (and ``from`` targets) that ``path`` imports."""
    package = ".".join(("asteroid_spmamba",) + path.relative_to(PACKAGE).with_suffix("").parts)
    if path.name != "__init__.py":
        package = package.rpartition(".")[0]
    names = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")
            if node.level:
                base = base[: len(base) - (node.level - 1)]
                base = base + (node.module.split(".") if node.module else [])
            else:
                base = node.module.split(".")
            module = ".".join(base)
            names.append(module)
            names += [f"{module}.{alias.name}" for alias in node.names]
    return names


def test_no_library_module_imports_the_command_line():
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        where = path.relative_to(PACKAGE.parent).as_posix()
        if path.relative_to(PACKAGE).parts[0] == "commands" or where in ENTRY_POINTS:
            continue
        for name in _imported_modules(path):
            if any(name == f or name.startswith(f + ".") for f in FORBIDDEN):
                offenders.append(f"{where} imports {name}")
    assert not offenders, "library modules import the command line:\n" + "\n".join(offenders)
