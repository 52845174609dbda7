"""The architecture, kept by reading the code (STYLE.md 1 and 3a): mlp/ imports torch, torchvision
and the standard library only; inside experiments/ imports go one way, down the layers; commands
are thin and alone at the top with the shared config and CLI; no module reaches into a library's
internals; no file outgrows a reader; importing does nothing."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MLP_DIR, EXP_DIR = ROOT / "mlp", ROOT / "experiments"
ALLOWED = {"torch", "torchvision", "mlp"} | set(sys.stdlib_module_names)
SHARED = {"experiments.config": 1, "experiments.cli": 2}
# Lower layers first: a module imports only from layers below its own (or its own package).
LAYERS = {"experiments.stores": 1, "experiments.tracking": 3, "experiments.training": 4,
          "experiments.study": 5, "experiments.results": 5, "experiments.benchmarks": 6}
COMMAND = 7
COMMANDS = {"train", "sweep", "report", "compare", "replicate", "strategies", "activations", "bench",
            "bench_sweep", "bench_workers"}
MAX_LINES, MAX_COMMAND_LINES = 300, 100


def _module(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Absolute names imported anywhere in the file (``from a import b`` gives ``a.b``, which
    may be a module or a name in ``a``)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names |= {f"{node.module}.{a.name}" for a in node.names}
    return names


def _unit(name: str) -> tuple[str, int] | None:
    """The layer unit (package or shared module) an experiments name belongs to, and its rank."""
    for prefix, rank in {**SHARED, **LAYERS}.items():
        if name == prefix or name.startswith(prefix + "."):
            return prefix, rank
    parts = name.split(".")
    if parts[0] == "experiments" and len(parts) > 1 and parts[1] in COMMANDS:
        return f"experiments.{parts[1]}", COMMAND
    return None


EXPERIMENT_FILES = sorted(p for p in EXP_DIR.rglob("*.py"))


@pytest.mark.parametrize("path", sorted(MLP_DIR.glob("*.py")), ids=lambda p: p.name)
def test_mlp_imports_only_torch_torchvision_and_stdlib(path: Path) -> None:
    roots = {name.split(".")[0] for name in _imports(path)}
    assert roots <= ALLOWED, f"{path.name} imports {sorted(roots - ALLOWED)}"


@pytest.mark.parametrize("path", EXPERIMENT_FILES, ids=lambda p: str(p.relative_to(EXP_DIR)))
def test_experiments_imports_go_one_way_down_the_layers(path: Path) -> None:
    me = _unit(_module(path))
    if me is None:  # experiments/__init__.py
        return
    unit, rank = me
    for name in _imports(path):
        target = _unit(name)
        if target is None or target[0] == unit:
            continue
        assert target[1] < rank, (f"{_module(path)} (layer {rank}) imports {name} (layer "
                                  f"{target[1]}): imports go commands -> study/results -> training "
                                  "-> tracking -> cli/config/stores -> mlp")


def test_only_commands_and_the_shared_modules_sit_at_the_top() -> None:
    top = {p.stem for p in EXP_DIR.glob("*.py")} - {"__init__"}
    assert top == COMMANDS | {"cli"}, sorted(top)
    packages = {p.parent.name for p in EXP_DIR.glob("*/__init__.py")}
    assert packages == {n.split(".")[1] for n in LAYERS} | {"config"}, sorted(packages)
    assert not top & packages, f"a package hides the command of the same name: {top & packages}"


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_commands_are_thin(name: str) -> None:
    text = (EXP_DIR / f"{name}.py").read_text()
    lines = len(text.splitlines())
    assert lines < MAX_COMMAND_LINES, f"experiments/{name}.py has {lines} lines: parse, call, print"
    assert "def main(" in text and 'if __name__ == "__main__":' in text


@pytest.mark.parametrize("path", EXPERIMENT_FILES + sorted(MLP_DIR.glob("*.py")),
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_no_file_outgrows_a_reader(path: Path) -> None:
    lines = len(path.read_text().splitlines())
    assert lines <= MAX_LINES, f"{path.relative_to(ROOT)} has {lines} lines (at most {MAX_LINES})"


@pytest.mark.parametrize("path", EXPERIMENT_FILES, ids=lambda p: str(p.relative_to(EXP_DIR)))
def test_no_library_internals_are_reached(path: Path) -> None:
    """No ``obj._private`` on anything but ``self``/``cls``, no import from a ``_module``."""
    tree = ast.parse(path.read_text())
    found = []
    for node in ast.walk(tree):
        if (isinstance(node, ast.Attribute) and node.attr.startswith("_")
                and not node.attr.startswith("__")
                and not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"))):
            found.append(f"line {node.lineno}: .{node.attr}")
    found += [f"import {n}" for n in _imports(path) if any(
        part.startswith("_") and not part.startswith("__") for part in n.split(".")[:-1])]
    assert not found, f"{path.relative_to(ROOT)} reaches into internals: {found}"


def test_importing_every_module_does_nothing(tmp_path: Path) -> None:
    """No files, no torch settings (the flush-denormal mode), no logging set-up at import."""
    modules = sorted({_module(p) for p in EXPERIMENT_FILES})
    code = "\n".join([
        "import logging, os, torch",
        *[f"import {m}" for m in modules],
        "assert (torch.tensor([1e-39]) * 1.0).item() != 0, 'denormals flushed at import'",
        "assert not logging.getLogger().handlers, logging.getLogger().handlers",
        "assert os.listdir('.') == [], os.listdir('.')",
    ])
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                          text=True, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
                          timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
