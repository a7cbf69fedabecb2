"""The handler modules don't reach into each other: what more than one of them needs lives in the
helper modules (``handlers/common.py``; ``handlers/access.py`` for who is asking and whether they
may), which import no handler module. Outside the package only the composition root (``app.py``)
imports handler modules; other modules may use the helpers."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "proxy"
HANDLERS = PACKAGE / "handlers"
HELPERS = frozenset({"common", "access"})
MODULES = sorted(p.stem for p in HANDLERS.glob("*.py") if p.stem != "__init__")


def module_name(path: Path) -> str:
    return ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)


def imported(source: str, module: str) -> set[str]:
    """Every module that ``module`` (its text: ``source``) imports, as absolute names; ``from .x
    import y`` counts as ``pkg.x`` and ``pkg.x.y`` (y may be a module)."""
    package = module.split(".")[:-1]
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                found = ".".join([*base, node.module] if node.module else base)
            else:
                found = node.module or ""
            names.add(found)
            names.update(f"{found}.{alias.name}" for alias in node.names)
    return names


def handler_modules_in(names: set[str]) -> set[str]:
    """The modules of ``proxy/handlers`` among ``names``, by their short name."""
    inside = {n.removeprefix("proxy.handlers.") for n in names if n.startswith("proxy.handlers.")}
    return inside & set(MODULES)


def test_the_scan_reads_every_spelling() -> None:
    assert {"auth", "auth_request", "logout", "proxy", "sessions", "probe"} <= set(MODULES)
    assert HELPERS <= set(MODULES)
    source = (
        "from . import auth\nfrom .auth_request import x\nimport proxy.handlers.logout\n"
        "from ..handlers import probe\nfrom .. import pages\nfrom ..sessions import store\n"
    )
    assert handler_modules_in(imported(source, "proxy.handlers.sessions")) == {
        "auth",
        "auth_request",
        "logout",
        "probe",
    }
    assert handler_modules_in(imported("from .handlers.common import x", "proxy.upstream_ws")) == {"common"}


@pytest.mark.parametrize("name", MODULES)
def test_a_handler_module_imports_no_other_handler_module(name: str) -> None:
    path = HANDLERS / f"{name}.py"
    wrong = handler_modules_in(imported(path.read_text(), module_name(path))) - HELPERS - {name}
    assert not wrong, (
        f"handlers/{name}.py imports {sorted(wrong)}: move what they share to handlers/common.py"
    )


def test_only_the_composition_root_imports_handler_modules() -> None:
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.parent == HANDLERS or path.name == "app.py":
            continue
        wrong = handler_modules_in(imported(path.read_text(), module_name(path))) - HELPERS
        assert not wrong, f"{path.relative_to(PACKAGE.parent)} imports handler modules {sorted(wrong)}"
