"""``python -m experiments.sweep [overrides]``: an Optuna study of MLP trials, tracked in MLflow.

Examples:
  python -m experiments.sweep                                   # the default study (search=default)
  python -m experiments.sweep +experiment=hidden_units          # a ready experiment
  python -m experiments.sweep +experiment=learning_rate sweep.quick=true
  python -m experiments.sweep sweep.sampler=random sweep.n_trials=30 sweep.workers=2
  python -m experiments.sweep --cfg job +experiment=joint       # show the composed config

``sweep.n_trials`` is the study's total: rerunning the same command resumes the study and runs
only the trials that are missing, or completes a finish that was interrupted. A study is one
experiment: a run whose configuration, search space or metric differs from the study's is
refused (use another ``sweep.study_name``); ``sweep.quick=true`` runs in a study of its own,
``NAME-quick``. Ctrl-C or SIGTERM marks the running trials failed (their MLflow runs KILLED)
and exits 130; the next run picks up from there. Exit code 2: bad configuration, search space
or data, another experiment under the study's name, or an unusable storage or tracking store,
reported before anything is written; exit code 1: too many failed trials.
"""

from __future__ import annotations

import sys

from experiments.cli import hydra_flags
from experiments.study import run_sweep


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    answered = hydra_flags(args, prog="python -m experiments.sweep", doc=__doc__)
    return answered if answered is not None else run_sweep(args)


if __name__ == "__main__":
    sys.exit(main())
