"""`python -m services.lifecycle_worker.liveness FILE [--max-age S]`: exit 0 when the
worker touched its liveness file (`fulfillment worker --liveness-file FILE`) within the
last S seconds, 1 otherwise. For container liveness probes (Kubernetes exec probes,
docker compose health checks): a stale file means the worker's consumer is gone, hung,
or connected but not consuming."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

DEFAULT_MAX_AGE_S = 90.0


def is_fresh(path: Path, max_age_s: float, now: float | None = None) -> bool:
    try:
        touched = path.stat().st_mtime
    except FileNotFoundError:
        return False
    return (time.time() if now is None else now) - touched <= max_age_s


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("file", type=Path)
    parser.add_argument("--max-age", type=float, default=DEFAULT_MAX_AGE_S)
    args = parser.parse_args(argv)
    if is_fresh(args.file, args.max_age):
        return 0
    print(f"worker liveness file {args.file} is missing or older than {args.max_age:g}s", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
