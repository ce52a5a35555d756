"""Imports point one way (STYLE.md): each layer imports only layers below it, checked on every module.

An equivalent of import-linter's `layers` contract, written here because import-linter's graph
builder scans one directory per root package, while `trackpulse.connectors` and `trackpulse.jobs`
live beside `src/` (the layout users asked for). Every `import`, module-level or inside a
function, counts: function-level imports are how cycles hide.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Top to bottom. A layer is a list of units; units of one layer are siblings and must not import
# each other. A unit may span modules that belong together (the CLI and its command modules).
LAYERS: list[list[set[str]]] = [
    [{"trackpulse.__main__"}],
    [{"trackpulse.cli", "trackpulse.cli_digest", "trackpulse.cli_alerts"}],
    [{"trackpulse.demo", "trackpulse.demo_alerts"}],
    [{"trackpulse.views"}],
    [{"trackpulse.server"}],
    [{"trackpulse.jobs"}, {"trackpulse.reports"}],
    [{"trackpulse.alerts"}, {"trackpulse.digests"}],
    [{"trackpulse.delivery"}],
    [{"trackpulse.channels"}, {"trackpulse.charts"}],
    [{"trackpulse.connectors"}, {"trackpulse.metrics"}, {"trackpulse.simulator"}],
    [{"trackpulse.progress"}],
    [{"trackpulse.sync_api"}],
    [{"trackpulse.store"}],
    [{"trackpulse.records"}, {"trackpulse.config"}, {"trackpulse.http"}, {"trackpulse.outcomes"},
     {"trackpulse.i18n"}],
    [{"trackpulse.errors"}, {"trackpulse.jsonio"}, {"trackpulse.gcpolicy"}],
]
PACKAGE_ROOT = "trackpulse"  # the package's own __init__ (version string): importable from anywhere


def layer_of(module: str) -> tuple[int, int, str] | None:
    """(layer depth, unit index, matched prefix) of a module, by its longest matching prefix."""
    best: tuple[int, int, str] | None = None
    for depth, units in enumerate(LAYERS):
        for u, names in enumerate(units):
            for name in names:
                if (module == name or module.startswith(name + ".")) and (best is None or len(name) > len(best[2])):
                    best = (depth, u, name)
    return best


def modules() -> dict[str, str]:
    """Every module of the distribution, by dotted name, with its source."""
    found: dict[str, str] = {}
    for base, package in ((ROOT / "src" / "trackpulse", "trackpulse"), (ROOT / "connectors", "trackpulse.connectors"),
                          (ROOT / "jobs", "trackpulse.jobs")):
        for path in base.rglob("*.py"):
            if "migrations" in path.parts:
                continue
            rel = path.relative_to(base).with_suffix("").parts
            name = ".".join((package, *rel)).removesuffix(".__init__")
            found[name] = path.read_text(encoding="utf-8")
    return found


def imported(module: str, source: str) -> set[str]:
    out: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: from the module's package (we only use absolute imports)
                parts = module.split(".")[: -node.level]
                base = ".".join(parts + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            out.add(base)
            out.update(f"{base}.{a.name}" for a in node.names)
    return {m for m in out if m.startswith("trackpulse")}


def violations(sources: dict[str, str]) -> list[str]:
    found: list[str] = []
    for module, source in sorted(sources.items()):
        if module == PACKAGE_ROOT:
            continue
        mine = layer_of(module)
        if mine is None:
            found.append(f"{module} is in no layer")
            continue
        for target in sorted(imported(module, source)):
            theirs = layer_of(target)
            if theirs is None or theirs[:2] == mine[:2]:
                continue
            if theirs[0] <= mine[0]:
                found.append(f"{module} imports {target} ({theirs[2]} is not below {mine[2]})")
    return found


def test_every_module_imports_only_layers_below_it() -> None:
    assert violations(modules()) == []


def test_the_check_bites_on_a_reversed_import() -> None:
    sources = modules()
    sources["trackpulse.store.reversed"] = "from trackpulse.metrics.report import report_of\n"
    sources["trackpulse.metrics.sneaky"] = "def f():\n    import trackpulse.cli\n"
    sources["trackpulse.channels.sibling"] = "from trackpulse.charts import velocity\n"
    found = violations(sources)
    assert any(v.startswith("trackpulse.store.reversed imports trackpulse.metrics") for v in found)
    assert any(v.startswith("trackpulse.metrics.sneaky imports trackpulse.cli") for v in found)
    assert any(v.startswith("trackpulse.channels.sibling imports trackpulse.charts") for v in found)
