"""Every example in every command's ``--help``, the README and ``docs/`` runs, in its quick form;
every link between those pages leads somewhere.

An example is a ``python -m ...`` (or ``make sweep|train|data|bench``) line with concrete
arguments; a line with a placeholder (``STUDY``, ``[overrides]``, ``...``) is a synopsis and
is not run. The quick form adds ``sweep.quick=true`` to whatever trains (so studies get their
``-quick`` names, which the report, replicate and compare examples then use) and ``--quick`` to
the benchmarks that have it (which test_bench.py runs)."""

from __future__ import annotations

import contextlib
import importlib
import io
import os
import re
import shlex
import sys
import time
from pathlib import Path

import pytest

from experiments.config import quick_name
from tests.conftest import DATA_ROOT, REPO, run_in_session

COMMANDS = ("experiments.sweep", "experiments.train", "experiments.report", "experiments.compare",
            "experiments.replicate", "experiments.strategies", "experiments.activations",
            "experiments.bench", "experiments.bench_sweep", "experiments.bench_workers", "mlp")
TRAINS = ("experiments.sweep", "experiments.train", "experiments.strategies")
# What this suite does not run, and why (each must still be named in the README or docs/).
NOT_RUN = {
    "make test": "the suite itself",
    "make test-fast": "the suite itself",
    "make lint": "CI runs it",
    "make setup": "CI runs it",
    "make ui": "a server that runs until stopped: tests/experiments/tracking/test_ui.py starts it",
    "make serve": "a server that runs until stopped: tests/experiments/registry/test_served.py "
                  "starts mlflow models serve",
    "python -m experiments.bench_workers": "minutes of 8 workers against a scratch PostgreSQL "
                                           "database and a tracking server: a benchmark, run by hand",
    "make bench": "test_bench.py runs it in its quick form",
    "python -m experiments.bench": "test_bench.py runs it in its quick form",
    "python -m experiments.bench_sweep": "test_bench.py runs it in its quick form",
}
PLACEHOLDER = re.compile(r"[A-Z]{2,}|\[[a-z]|\.\.\.|NAME")
MAKE = {"sweep": "experiments.sweep", "train": "experiments.train", "data": "mlp",
        "bench": "experiments.bench"}


def command(module: str):  # noqa: ANN201 - the command's module, whose main(argv) runs it
    return importlib.import_module("mlp.__main__" if module == "mlp" else module)


def help_text(module: str) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):  # argparse exits
        command(module).main(["--help"])
    return out.getvalue()


def help_examples(module: str) -> list[str]:
    """The ``python -m`` lines of a command's help, comments dropped."""
    found = re.findall(r"^\s*(?:Example: |  )(python -m \S+[^#\n]*)", help_text(module), re.M)
    return [" ".join(line.split()) for line in found]


DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]


def readme_examples(path: Path = REPO / "README.md") -> list[str]:
    """The commands in a page's code spans and code blocks (continuation lines joined); a
    ``text`` block is output, not commands."""
    text = path.read_text()
    lines = []
    for language, block in re.findall(r"```(\w*)\n(.*?)```", text, re.S):
        if language in ("yaml", "python", "text"):
            continue
        lines += [line.split("#")[0] for line in block.replace("\\\n", " ").splitlines()]
    prose = re.sub(r"```.*?```", "", text, flags=re.S)
    lines += [" ".join(span.split()) for span in re.findall(r"`([^`]+)`", prose)]
    out = []
    for line in lines:
        m = re.search(r"(?:\.venv/bin/)?(python -m \S+.*|make [a-z-]+(?: ARGS=\"[^\"]*\")?)", line)
        if m:
            out.append(" ".join(m.group(1).replace(".venv/bin/", "").split()))
    return out


def argv_of(example: str) -> tuple[str, list[str]] | None:
    """The module and arguments an example runs (None for a ``make`` target that only sets up)."""
    words = shlex.split(example)
    if words[0] == "make":
        if words[1] not in MAKE:
            return None
        args = shlex.split(words[2].split("=", 1)[1]) if len(words) > 2 else []
        return MAKE[words[1]], args
    return words[2], words[3:]


def quick_form(module: str, args: list[str]) -> list[str]:
    """The arguments of an example's quick form."""
    if module in TRAINS:
        args = [re.sub(r"^\+experiment=best/(.+)$", lambda m: f"+experiment=best/{quick_name(m[1])}", a)
                for a in args]
        return args if "sweep.quick=true" in args else [*args, "sweep.quick=true"]
    if module in ("experiments.report", "experiments.replicate"):
        return [quick_name(a) if not a.startswith("-") and (i == 0 or not args[i - 1].startswith("--"))
                else a for i, a in enumerate(args)]
    if module == "experiments.compare":
        return [quick_name(a) if i and args[i - 1] == "--study" else a for i, a in enumerate(args)]
    if module in ("experiments.bench", "experiments.bench_sweep"):
        return [*args, "--quick"]
    return args


def phase(module: str, args: list[str]) -> int:
    """Run order: what makes studies first, then what reads them."""
    if module == "experiments.sweep":
        return 1
    if module == "experiments.strategies":
        return 2
    if module in ("experiments.report", "experiments.replicate", "experiments.compare") or any(
            a.startswith("+experiment=best/") for a in args):
        return 3
    return 0


def all_examples() -> dict[str, str]:
    """Every example, with where it was found (the first place that names it)."""
    found: dict[str, str] = {}
    for module in COMMANDS:
        for example in help_examples(module):
            found.setdefault(example, f"python -m {module} --help")
    for path in DOCS:
        for example in readme_examples(path):
            found.setdefault(example, str(path.relative_to(REPO)))
    return found


def runnable() -> list[tuple[str, str, str, list[str]]]:
    """(example, where, module, quick-form args) for the examples to run, in run order."""
    todo = []
    for example, where in all_examples().items():
        if PLACEHOLDER.search(example.replace(" ARGS=", " ")) or example in NOT_RUN:
            continue
        parsed = argv_of(example)
        if parsed is None:
            raise AssertionError(f"{example!r} ({where}) is neither run nor in NOT_RUN")
        module, args = parsed
        args = quick_form(module, args)
        if all((module, args) != (m, a) for _, _, m, a in todo):  # make sweep = python -m ...
            todo.append((example, where, module, args))
    return sorted(todo, key=lambda t: phase(t[2], t[3]))


@pytest.mark.slow  # every command's --help, composed
def test_examples_are_found_in_every_help_the_readme_and_the_docs() -> None:
    helps = {m: help_examples(m) for m in COMMANDS}
    for module in ("experiments.sweep", "experiments.train", "experiments.report",
                   "experiments.compare", "experiments.replicate", "experiments.strategies",
                   "experiments.activations"):
        assert helps[module], f"python -m {module} --help shows no example"
        assert all(e.startswith(f"python -m {module}") for e in helps[module]), helps[module]
    readme = readme_examples()
    assert "make sweep" in readme and "make test" in readme
    for example in NOT_RUN:
        assert example in all_examples(), f"NOT_RUN names {example!r}, which no longer appears"
    known = set(COMMANDS)
    for example, where, module, _ in runnable():
        assert module in known, f"{example!r} ({where}) runs an unknown command {module}"
    # Every ready experiment runs in its quick form here (strategies through its own driver).
    ran = {a.split("=", 1)[1] for _, _, m, args in runnable() if m == "experiments.sweep"
           for a in args if a.startswith("+experiment=")}
    ran |= {"strategies"} if any(m == "experiments.strategies" for _, _, m, _ in runnable()) else set()
    ready = {p.stem for p in (REPO / "conf" / "experiment").glob("*.yaml")}
    assert ready <= ran, f"ready experiments no example runs: {sorted(ready - ran)}"


ARGPARSE = ("experiments.report", "experiments.compare", "experiments.replicate",
            "experiments.strategies", "experiments.bench", "experiments.bench_sweep",
            "experiments.bench_workers", "mlp")


@pytest.mark.parametrize("module", ARGPARSE)
def test_help_names_the_command_and_explains_every_option(module: str) -> None:
    text = help_text(module)
    assert text.startswith(f"usage: python -m {module} "), text[:80]
    options = text[text.index("\noptions:\n") + 10:].splitlines()
    for i, line in enumerate(options):
        if line.startswith("  -") and not line.startswith("  -h, --help"):
            explained = re.search(r"\S\s{2,}\S", line.strip()) or (
                i + 1 < len(options) and options[i + 1].startswith(" " * 8))
            assert explained, f"python -m {module} --help: no help for {line.strip()!r}"


def run_examples(todo: list[tuple[str, str, str, list[str]]]) -> list[str]:
    """Run each example in this process, in order; print what each took; return the failures."""
    failures = []
    for example, where, module, args in todo:
        start = time.perf_counter()
        out, err = io.StringIO(), io.StringIO()
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                code = command(module).main(args)
        except SystemExit as exc:
            code = exc.code
        print(f"{time.perf_counter() - start:6.1f} s  exit {code}  {module} {' '.join(args)}",
              flush=True)
        if code not in (0, None):
            failures.append(f"{example!r} ({where}) as {args}: exit {code}: "
                            f"{(err.getvalue() or out.getvalue()).strip()[-600:]}")
        failed = re.findall(r"^\[\d+/\d+\] trial \d+ FAIL: .*$", out.getvalue(), re.M)
        if failed:  # a sweep goes on past a failed trial; an example must not have one
            failures.append(f"{example!r} ({where}) as {args}: {failed[0][:300]}")
    return failures


@pytest.mark.slow
def test_every_example_runs_in_its_quick_form(tmp_path: Path) -> None:
    """In a fresh interpreter, as a user runs them (no store engine, signal or setting of other
    tests carried over), one after another in an empty directory with the data beside it."""
    (tmp_path / "data").symlink_to(DATA_ROOT)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "OPTUNA_"))}
    code, out, err = run_in_session([sys.executable, "-m", "tests.test_examples", str(tmp_path)],
                                    timeout=1800, cwd=REPO, env=env)
    print(out)  # what each example took
    assert code == 0, out[-8000:] + err[-3000:]


def _anchor(heading: str) -> str:
    """GitHub's anchor for a Markdown heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def test_every_link_between_the_readme_and_the_docs_leads_somewhere() -> None:
    """A newcomer follows links: each relative link names a file that exists (and a heading in
    it, when it names one), and every docs/ page is linked from the README."""
    broken = []
    for path in DOCS:
        for target in re.findall(r"\]\(([^)\s]+)\)", path.read_text()):
            if re.match(r"[a-z]+:", target):
                continue
            file, _, anchor = target.partition("#")
            dest = (path.parent / file).resolve() if file else path
            if not dest.exists():
                broken.append(f"{path.relative_to(REPO)}: {target} (no such file)")
            elif anchor and dest.suffix == ".md" and anchor not in {
                    _anchor(h) for h in re.findall(r"^#+ (.*)$", dest.read_text(), re.M)}:
                broken.append(f"{path.relative_to(REPO)}: {target} (no such heading)")
    assert not broken, "\n".join(broken)
    linked = set(re.findall(r"\]\((docs/[^)#]+)", (REPO / "README.md").read_text()))
    assert {f"docs/{p.name}" for p in DOCS[1:]} <= linked


if __name__ == "__main__":  # the test above: python -m tests.test_examples WORKDIR
    os.chdir(sys.argv[1])
    problems = run_examples(runnable())
    print("\n".join(problems))
    sys.exit(1 if problems else 0)
