"""Layering: the library `sands/` depends on nothing above it (Dagster, the code location, its
resources and assets), not even lazily inside a function or by a module path in a string."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

LIBRARY = Path(__file__).resolve().parents[1] / "sands"
ABOVE = ("dagster", "dagster_project", "resources", "assets")
# A dotted path starting with a package above; `dagster.run_id`-style MLflow tags are not modules.
MODULE_PATH = re.compile(r"(?<![\w./-])(dagster_project|resources|assets|dagster_\w+)(\.\w+)+")


def _modules() -> list[Path]:
    return sorted(LIBRARY.rglob("*.py"))


def _above(module: str) -> bool:
    top = module.split(".")[0]
    return top in ABOVE or top.startswith("dagster_")


def _imports(tree: ast.AST) -> list[tuple[int, str]]:
    """Every absolute module an import statement names, wherever it sits in the file."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
    return found


def _docstrings(tree: ast.AST) -> set[int]:
    """The ids of docstring nodes: prose that runs nothing, so it may point upwards."""
    kinds = (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)
    return {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, kinds)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }


def _named_modules(tree: ast.AST) -> list[tuple[int, str]]:
    """Module paths above the library in string literals (`-m x.y`, `x.y:factory`, importlib)."""
    prose = _docstrings(tree)
    return [
        (node.lineno, match.group(0))
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in prose
        for match in MODULE_PATH.finditer(node.value)
    ]


def test_the_library_has_modules() -> None:
    assert len(_modules()) > 10


# Modules every domain uses stay at the top; everything else lives in its domain's package.
TOP_LEVEL = {"__init__.py", "settings.py", "html.py"}


def _packages() -> list[Path]:
    return sorted(path.parent for path in LIBRARY.rglob("__init__.py") if path.parent != LIBRARY)


def test_the_library_is_grouped_by_domain() -> None:
    flat = {path.name for path in LIBRARY.glob("*.py")}
    assert flat == TOP_LEVEL, f"modules outside a domain package: {sorted(flat - TOP_LEVEL)}"
    assert len(_packages()) > 5


@pytest.mark.parametrize("package", _packages(), ids=lambda p: str(p.relative_to(LIBRARY.parent)))
def test_a_domain_package_says_what_it_holds_and_imports_nothing(package: Path) -> None:
    """Modules are imported by their full path; an `__init__` that imported them could cycle."""
    tree = ast.parse((package / "__init__.py").read_text())
    assert ast.get_docstring(tree), f"{package.name}/__init__.py has no docstring"
    imports = [n for n in ast.walk(tree) if isinstance(n, ast.Import | ast.ImportFrom)]
    assert not imports, f"{package.name}/__init__.py imports: {[n.lineno for n in imports]}"


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(LIBRARY.parent)))
def test_library_module_imports_nothing_above_it(path: Path) -> None:
    tree = ast.parse(path.read_text(), filename=str(path))
    offending = [f"line {line}: {name}" for line, name in _imports(tree) if _above(name)]
    assert not offending, f"{path.name} imports above the library: {offending}"


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(LIBRARY.parent)))
def test_library_module_names_no_module_above_it(path: Path) -> None:
    tree = ast.parse(path.read_text(), filename=str(path))
    offending = [f"line {line}: {name}" for line, name in _named_modules(tree)]
    assert not offending, f"{path.name} names a module above the library: {offending}"


@pytest.mark.parametrize(
    ("source", "caught"),
    [
        ("def f():\n    from resources import build_resources\n", True),
        ("import dagster_dbt\n", True),
        ("import dagster.core as d\n", True),
        ("from assets.models import x\n", True),
        ("from .cli import app\n", False),
        ("from sands.models.registry import Registry\n", False),
        ("import dagsterish\n", False),
    ],
)
def test_the_import_rule_catches_imports_at_any_level(source: str, caught: bool) -> None:
    assert any(_above(name) for _, name in _imports(ast.parse(source))) is caught


@pytest.mark.parametrize(
    ("source", "caught"),
    [
        ('CMD = [sys.executable, "-m", "dagster_project.cli", "serve"]\n', True),
        ('APP = "resources.serving:app_from_env"\n', True),
        ('HELP = "run `sands serve` over the registry."\n', False),
        ('URI = "s3://bucket/assets.parquet"\n', False),
        ('TAG = "dagster.run_id"\n', False),
        ('def f():\n    """Reads `dagster_project.scenario.DayRecord`s."""\n', False),
    ],
)
def test_the_string_rule_catches_module_paths(source: str, caught: bool) -> None:
    assert bool(_named_modules(ast.parse(source))) is caught
