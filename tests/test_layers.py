"""The package's layers import one way: golden <- hdl <- sim <- fpga <- qarith (registry, CLI, manifest)."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
#: Folder of each layer, lowest first; a module may import its own layer and the ones before it.
LAYERS = [("golden", "golden"), ("hdl", "hdl"), ("sim", "sim"), ("fpga", "fpga"), ("qarith", "qarith")]
RANK = {name: rank for rank, (name, _) in enumerate(LAYERS)}


def module_name(path):
    layer = next(name for name, folder in LAYERS if path.is_relative_to(ROOT / folder))
    folder = dict(LAYERS)[layer]
    parts = ["qarith"] + ([layer] if layer != "qarith" else []) + list(path.relative_to(ROOT / folder).with_suffix("").parts)
    return parts[:-1] if parts[-1] == "__init__" else parts, path.name == "__init__.py"


def imported_modules(path):
    """Absolute names of the qarith modules ``path`` imports (at any depth in the file)."""
    parts, is_package = module_name(path)
    package = parts if is_package else parts[:-1]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[:len(package) - node.level + 1]
                yield ".".join(base + ([node.module] if node.module else [])), node.lineno
            elif node.module and node.module.split(".")[0] == "qarith":
                yield node.module, node.lineno
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "qarith":
                    yield alias.name, node.lineno


def layer_of(module):
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in RANK and parts[1] != "qarith" else "qarith"


SOURCES = sorted(p for _, folder in LAYERS for p in (ROOT / folder).rglob("*.py"))


@pytest.mark.parametrize("path", SOURCES, ids=[str(p.relative_to(ROOT)) for p in SOURCES])
def test_no_import_from_a_higher_layer(path):
    own = layer_of(".".join(module_name(path)[0]))
    for module, line in imported_modules(path):
        assert RANK[layer_of(module)] <= RANK[own], \
            f"{path.relative_to(ROOT)}:{line} imports {module}, a higher layer than {own}"


def test_the_checker_sees_an_upward_import(tmp_path, monkeypatch):
    """A module of the hdl layer that imports the registry is caught (the check can fail)."""
    bad = ROOT / "hdl" / "common" / "component.py"
    source = bad.read_text() + "\nfrom ...registry import BLOCKS\n"
    monkeypatch.setattr(Path, "read_text", lambda self, *a, **k: source if self == bad else Path.read_bytes(self).decode())
    with pytest.raises(AssertionError, match=r"hdl/common/component\.py:\d+ imports qarith\.registry, a higher layer than hdl"):
        test_no_import_from_a_higher_layer(bad)


def test_shared_machinery_sits_apart_from_blocks():
    """Each layer's blocks are its top-level modules; shared code lives in its ``common`` package."""
    from qarith.registry import BLOCKS
    for layer in ("golden", "hdl", "sim"):
        modules = {p.stem for p in (ROOT / layer).glob("*.py")} - {"__init__"}
        assert modules == set(BLOCKS), (layer, modules ^ set(BLOCKS))
        assert (ROOT / layer / "common" / "__init__.py").exists()


def test_every_block_has_its_five_pieces():
    """Generator, golden model, bench and tests under the block's name, and its registry entry's objects
    come from those modules."""
    from qarith.registry import BLOCKS
    for name, block in BLOCKS.items():
        for path in (f"golden/{name}.py", f"hdl/{name}.py", f"sim/{name}.py", f"tests/test_{name}.py"):
            assert (ROOT / path).exists(), path
        assert block.config.__module__ == block.golden.__module__ == f"qarith.golden.{name}", name
        assert block.generator.__module__ == f"qarith.hdl.{name}", name
        assert block.bench.__name__ == f"qarith.sim.{name}", name
