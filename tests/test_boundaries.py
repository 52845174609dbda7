"""The core stays free of the plumbing (STYLE.md 1): mlp/ imports torch, torchvision and stdlib."""

import ast
import sys
from pathlib import Path

import pytest

MLP_DIR = Path(__file__).resolve().parents[1] / "mlp"
ALLOWED = {"torch", "torchvision", "mlp"} | set(sys.stdlib_module_names)


@pytest.mark.parametrize("path", sorted(MLP_DIR.glob("*.py")), ids=lambda p: p.name)
def test_mlp_imports_only_torch_torchvision_and_stdlib(path: Path) -> None:
    tree = ast.parse(path.read_text())
    roots = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    assert roots <= ALLOWED, f"{path.name} imports {sorted(roots - ALLOWED)}"
