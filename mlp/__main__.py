"""``python -m mlp [ROOT]``: prepare Fashion-MNIST under ROOT (default ``data``) and say where.

Copies the four original files from Debian's dataset-fashion-mnist package, checks their SHA-256
and unpacks them where torchvision's FashionMNIST reads them.

Example:
  python -m mlp data
"""

from __future__ import annotations

import argparse
import sys

from mlp.data import DataError, prepare


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mlp", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("root", nargs="?", default="data", help="data folder (default: data)")
    args = parser.parse_args(argv)
    try:
        where = prepare(args.root)
    except DataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"Fashion-MNIST ready in {where} (SHA-256 verified)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
