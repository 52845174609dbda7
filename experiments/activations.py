"""``python -m experiments.activations [overrides]``: relu, sigmoid and tanh with their derivatives.

Draws each activation on [-8, 8] with its derivative computed twice: by autograd, and by the
hand-written rule the manual backward pass uses (written in terms of the activation's output).
The two are overlaid, the hand-written one dashed on top, so where they agree one line is seen.
Writes reports/activations/{relu,sigmoid,tanh,activations}.png and logs them to an MLflow run
(kind=activations) with the largest difference between the two derivatives as a metric each.
Overrides as for the other commands, e.g. mlflow.tracking_uri, mlflow.experiment.

Examples:
  python -m experiments.activations
  python -m experiments.activations mlflow.experiment=notes
"""

from __future__ import annotations

import sys
from pathlib import Path

from experiments.cli import command_config, fail, one_line
from experiments.stores import mask_url
from experiments.tracking import check_store
from experiments.training import figure_run
from experiments.training.figures import activation_figures

OUT = Path("reports") / "activations"


def main(argv: list[str] | None = None) -> int:
    cfg = command_config(argv, prog="python -m experiments.activations", doc=__doc__)
    if isinstance(cfg, int):
        return cfg
    try:  # before anything is drawn or written
        check_store(cfg.mlflow.tracking_uri)
    except ConnectionError as exc:
        fail(str(exc))
    figs, gaps = activation_figures()
    OUT.mkdir(parents=True, exist_ok=True)
    for name, fig in figs.items():
        fig.savefig(OUT / name, dpi=110, bbox_inches="tight")
    for name, gap in gaps.items():
        print(f"{name}: largest |autograd - hand-written| derivative on [-8, 8]: {gap:.1e}")
    try:
        run_id = figure_run(cfg, figs, {f"derivative_gap/{k}": v for k, v in gaps.items()},
                            name="activations", kind="activations")
    except Exception as exc:  # noqa: BLE001 - the PNGs are written; say why MLflow has none
        fail(f"the PNGs are in {OUT}, but MLflow ({mask_url(cfg.mlflow.tracking_uri)}) could not "
             f"log them: {mask_url(one_line(exc))[:300]}", code=1)
    print(f"wrote {', '.join(str(OUT / n) for n in figs)}; logged under plots/ to MLflow run "
          f"{run_id} ({mask_url(cfg.mlflow.tracking_uri)}, experiment {cfg.mlflow.experiment!r})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
