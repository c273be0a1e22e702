"""Services talk only through the bus: no service package imports another's, and services/common imports
none of them. A base module (an interface) never imports the implementations built on it."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SERVICES_DIR = Path(__file__).resolve().parents[1] / "services"
SERVICES = ("listener", "enricher", "generator", "curator", "poster")


def package_of(path: Path) -> str:
    return ".".join(["deephype", *path.relative_to(SERVICES_DIR).parts[:-1]])


def imported_modules(source: str, package: str) -> set[str]:
    """Every module `source` (in `package`) imports, at the top or inside a function, as absolute names."""
    tree = ast.parse(source)
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolve against this file's package
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parts, base] if base else parts)
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def owner(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "deephype" and parts[1] in SERVICES else None


@pytest.mark.parametrize("package", [*SERVICES, "common"])
def test_no_service_package_imports_another_services_package(package: str) -> None:
    crossings = []
    for path in sorted((SERVICES_DIR / package).rglob("*.py")):
        for module in imported_modules(path.read_text(encoding="utf-8"), package_of(path)):
            other = owner(module)
            if other is not None and other != package:
                crossings.append(f"{path.relative_to(SERVICES_DIR)} imports {module}")
    assert crossings == [], "services share code only through services/common:\n" + "\n".join(crossings)


# interface module -> the implementation modules it must not import (the factories live elsewhere)
BASES = {
    "common/bus.py": ("deephype.common.rabbit", "deephype.common.memory_bus"),
    "common/music_lookup/providers.py": (
        "deephype.common.music_lookup.spotify",
        "deephype.common.music_lookup.musicbrainz",
        "deephype.common.music_lookup.build",
    ),
    "common/platforms/base.py": (
        "deephype.common.platforms.x",
        "deephype.common.platforms.mastodon",
        "deephype.common.platforms.bluesky",
        "deephype.common.platforms.build",
    ),
}


@pytest.mark.parametrize("base", sorted(BASES))
def test_no_base_module_imports_its_implementations(base: str) -> None:
    path = SERVICES_DIR / base
    imported = imported_modules(path.read_text(encoding="utf-8"), package_of(path))
    found = sorted(name for name in imported if name.startswith(BASES[base]))
    assert found == [], f"{base} imports {found}; build them in a factory module instead"


def test_the_checker_sees_a_crossing() -> None:
    """The tests above can fail: a poster module importing the listener is caught, relative imports too."""
    source = (
        "from deephype.listener.handlers import RawPost\n"
        "from ..curator import store\n"
        "def later():\n    import deephype.enricher.app\n"
    )
    found = {owner(module) for module in imported_modules(source, "deephype.poster")} - {None}
    assert found == {"listener", "curator", "enricher"}
