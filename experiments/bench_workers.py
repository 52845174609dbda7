"""``python -m experiments.bench_workers``: sweep workers against PostgreSQL and a tracking server.

Starts an ``mlflow server`` on a free loopback port with a scratch PostgreSQL database behind it,
creates a second scratch database for the Optuna storage, runs ``--workers`` independent
``python -m experiments.sweep`` processes with identical overrides (the docker-compose topology)
on tiny trials, and prints: trials per minute, p50/p95 of the per-trial bookkeeping time
(everything a trial costs but its training compute: claim, config, MLflow run and per-epoch
metrics, Optuna tell, progress line), and the lost and duplicated trials (target: zero of both).
The scratch databases are dropped at the end.

Examples:
  python -m experiments.bench_workers                      # 8 workers, 64 trials
  python -m experiments.bench_workers --workers 4 --trials 24
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from experiments.benchmarks.workers import REPO, report, run, timed_worker
from experiments.stores.scratch import ADMIN_URL


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["--worker"]:
        return timed_worker(Path(args[1]), args[2:])
    parser = argparse.ArgumentParser(prog="python -m experiments.bench_workers",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--workers", type=int, default=8, help="worker processes (default 8)")
    parser.add_argument("--trials", type=int, default=64, help="trials of the study (default 64)")
    parser.add_argument("--server-workers", type=int, default=2, help="mlflow server --workers")
    parser.add_argument("--data", default=str(REPO / "data"), help="the data root (data.root)")
    parser.add_argument("--postgres", default=ADMIN_URL, help="a URL that may CREATE DATABASE")
    opts = parser.parse_args(args)
    f = run(workers=opts.workers, trials=opts.trials, data=opts.data, admin_url=opts.postgres,
            server_workers=opts.server_workers)
    print(report(f, trials=opts.trials))
    return 0 if f["lost"] == 0 and f["duplicated"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
