"""Experiment plumbing: Hydra configs, Optuna studies and MLflow tracking around ``mlp``.

Commands (``python -m experiments.NAME``) are the modules at this level, with the shared config
(``config``) and command-line plumbing (``cli``). Below them, one way down: the study engine
(``study``) and the read side (``results``), then ``training``, ``tracking``, ``stores`` and
finally ``mlp``. Benchmarks live in ``bench``. Importing any of it does nothing but import.
"""

__all__: list[str] = []
