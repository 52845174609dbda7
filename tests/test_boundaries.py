"""The architecture, kept by reading the code (STYLE.md 1 and 3a): mlp/ imports torch, torchvision
and the standard library only; inside experiments/ imports go one way, down the layers; commands
are thin and alone at the top with the shared config and CLI; no module reaches into a library's
internals; no file outgrows a reader; importing does nothing."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MLP_DIR, EXP_DIR = ROOT / "mlp", ROOT / "experiments"
ALLOWED = {"torch", "torchvision", "mlp"} | set(sys.stdlib_module_names)
SHARED = {"experiments.failpoints": 0, "experiments.config": 1, "experiments.cli": 2}
# Lower layers first: a module imports only from layers below its own (or its own package).
LAYERS = {"experiments.stores": 1, "experiments.tracking": 3, "experiments.registry": 4,
          "experiments.training": 5, "experiments.study": 6, "experiments.results": 6,
          "experiments.benchmarks": 7}
COMMAND = 8
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
MLP_FILES = sorted(MLP_DIR.glob("*.py"))


def _listed(offenders: list[str]) -> str:
    return f"{len(offenders)} offender(s):\n" + "\n".join(offenders)


def test_mlp_imports_only_torch_torchvision_and_stdlib() -> None:
    offenders = []
    for path in MLP_FILES:
        roots = {name.split(".")[0] for name in _imports(path)}
        if not roots <= ALLOWED:
            offenders.append(f"mlp/{path.name} imports {sorted(roots - ALLOWED)}")
    assert not offenders, _listed(offenders)


def test_experiments_imports_go_one_way_down_the_layers() -> None:
    offenders = []
    for path in EXPERIMENT_FILES:
        me = _unit(_module(path))
        if me is None:  # experiments/__init__.py
            continue
        unit, rank = me
        for name in sorted(_imports(path)):
            target = _unit(name)
            if target is not None and target[0] != unit and target[1] >= rank:
                offenders.append(f"{_module(path)} (layer {rank}) imports {name} (layer {target[1]})")
    assert not offenders, _listed(offenders) + (
        "\nimports go commands -> study/results -> training -> tracking -> cli/config/stores"
        " -> failpoints -> mlp")


def test_only_commands_and_the_shared_modules_sit_at_the_top() -> None:
    top = {p.stem for p in EXP_DIR.glob("*.py")} - {"__init__"}
    packages = {p.parent.name for p in EXP_DIR.glob("*/__init__.py")}
    want_top, want_packages = COMMANDS | {"cli", "failpoints"}, {n.split(".")[1] for n in LAYERS} | {"config"}
    offenders = [f"experiments/{name}.py is neither a command nor a shared module (cli, failpoints)"
                 for name in sorted(top - want_top)]
    offenders += [f"experiments/{name}.py is missing" for name in sorted(want_top - top)]
    offenders += [f"experiments/{name}/ is not a layer package" for name in sorted(packages - want_packages)]
    offenders += [f"experiments/{name}/ is missing" for name in sorted(want_packages - packages)]
    offenders += [f"a package hides the command of the same name: {name}" for name in sorted(top & packages)]
    assert not offenders, _listed(offenders)


def test_commands_are_thin() -> None:
    offenders = []
    for name in sorted(COMMANDS):
        if not (EXP_DIR / f"{name}.py").is_file():
            offenders.append(f"experiments/{name}.py is missing")
            continue
        text = (EXP_DIR / f"{name}.py").read_text()
        lines = len(text.splitlines())
        if lines >= MAX_COMMAND_LINES:
            offenders.append(f"experiments/{name}.py has {lines} lines: parse, call, print")
        if "def main(" not in text or 'if __name__ == "__main__":' not in text:
            offenders.append(f"experiments/{name}.py lacks def main( or its __main__ guard")
    assert not offenders, _listed(offenders)


def test_no_file_outgrows_a_reader() -> None:
    offenders = []
    for path in EXPERIMENT_FILES + MLP_FILES:
        lines = len(path.read_text().splitlines())
        if lines > MAX_LINES:
            offenders.append(f"{path.relative_to(ROOT)} has {lines} lines (at most {MAX_LINES})")
    assert not offenders, _listed(offenders)


def _internals(path: Path) -> list[str]:
    """No ``obj._private`` on anything but ``self``/``cls``, no import from a ``_module``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if (isinstance(node, ast.Attribute) and node.attr.startswith("_")
                and not node.attr.startswith("__")
                and not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"))):
            found.append(f"line {node.lineno}: .{node.attr}")
    found += [f"import {n}" for n in sorted(_imports(path)) if any(
        part.startswith("_") and not part.startswith("__") for part in n.split(".")[:-1])]
    return found


def test_no_library_internals_are_reached() -> None:
    offenders = [f"{path.relative_to(ROOT)} reaches into internals: {found}"
                 for path in EXPERIMENT_FILES if (found := _internals(path))]
    assert not offenders, _listed(offenders)


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
