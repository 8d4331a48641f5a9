"""One command for every benchmark: ``python -m tests.bench [--full]``.

Each script builds its own embedded PostgreSQL under a temporary folder, loads
generated data (valid credit codes, Chinese names), starts the service as a
user would, measures with Debian's ``wrk`` (or its own asyncio load for writes),
and prints each figure beside its baseline measured in the same run as a ratio:
a bare Litestar + asyncpg app, ``pgbench -S``, a plain INSERT.

The default sizes finish in a few minutes on a 2-core machine; ``--full`` uses
the sizes the issues name (100,000 subjects, 1,000,000 records, a log of
1,000,000 leaves) and takes most of an hour.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

QUICK = [
    ("audit log: proofs and verify", ["bench_log.py", "1000", "10000", "100000"]),
    ("audited writes and listings", ["bench_records.py", "2000", "100000"]),
    ("credit-bureau API", ["bench_bureau.py", "--subjects", "20000", "--records", "200000",
                           "--feed", "50000", "--duration", "8"]),
    ("public disclosure", ["bench_public.py", "--records", "200000", "--duration", "8"]),
    ("access accounting", ["bench_access.py", "3000", "3"]),
    ("subject search", ["bench_search.py", "--subjects", "20000", "--duration", "5",
                        "--rounds", "1"]),
    ("subject writes vs bare app", ["bench_writes.py", "--duration", "5", "--rounds", "1"]),
    ("penalty import", ["bench_import.py", "--rows", "5000"]),
    ("log verify", ["bench_verify.py", "--leaves", "100000", "--rounds", "1"]),
    ("bureau lookups with a read replica", ["bench_replica.py", "--duration", "5",
                                            "--rounds", "2"]),
    ("writes with two witnesses", ["bench_witnessing.py", "--duration", "5", "--rounds", "3"]),
]
FULL = [
    ("audit log: proofs and verify", ["bench_log.py", "1000", "10000", "100000", "1000000"]),
    ("audited writes and listings", ["bench_records.py", "2000", "1000000"]),
    ("credit-bureau API", ["bench_bureau.py"]),
    ("public disclosure", ["bench_public.py", "--records", "1000000"]),
    ("access accounting", ["bench_access.py", "6000", "3"]),
    ("subject search", ["bench_search.py"]),
    ("subject writes vs bare app", ["bench_writes.py"]),
    ("penalty import", ["bench_import.py"]),
    ("log verify", ["bench_verify.py"]),
    ("bureau lookups with a read replica", ["bench_replica.py", "--subjects", "100000",
                                            "--records", "1000000"]),
    ("writes with two witnesses", ["bench_witnessing.py"]),
]


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.bench", description=__doc__)
    parser.add_argument("--full", action="store_true", help="the issues' full data sizes")
    parser.add_argument("--only", help="run only benchmarks whose title contains this")
    args = parser.parse_args()
    if shutil.which("wrk") is None and shutil.which("apt-get") and os.geteuid() == 0:
        print("installing Debian's wrk (the load generator)", flush=True)
        subprocess.run(["apt-get", "install", "-y", "-q", "wrk"], check=False)  # noqa: S607 - system package manager
        if shutil.which("wrk") is None:
            subprocess.run(["sh", "-c", "apt-get update -q && apt-get install -y -q wrk"], check=False)  # noqa: S607
    if shutil.which("wrk") is None:
        print("wrk is missing: apt-get install -y wrk", file=sys.stderr)
        return 2
    failed = 0
    for title, command in FULL if args.full else QUICK:
        if args.only and args.only not in title:
            continue
        print(f"\n=== {title}: {' '.join(command)} ===", flush=True)
        started = time.monotonic()
        result = subprocess.run([sys.executable, str(HERE / command[0]), *command[1:]], check=False)  # noqa: S603 - our own scripts
        print(f"--- {title}: exit {result.returncode} after {time.monotonic() - started:.0f} s", flush=True)
        failed += result.returncode != 0
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
