"""``python -m mlp [ROOT]``: prepare Fashion-MNIST under ROOT (default ``data``) and say where."""

import sys

from mlp.data import DataError, prepare

try:
    where = prepare(sys.argv[1] if len(sys.argv) > 1 else "data")
except DataError as exc:
    print(f"error: {exc}", file=sys.stderr)
    raise SystemExit(1) from None
print(f"Fashion-MNIST ready in {where} (SHA-256 verified)")
