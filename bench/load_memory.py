#!/usr/bin/env python3
"""Load and memory under `wrangler dev` with moto (signatures enforced) behind.

    .venv/bin/python bench/load_memory.py [--requests 10000] [--tokens 100000] [--concurrency 50]

1. N requests at C concurrency over 50 projects (one token allowed all 50): every answer
   must be 200 — the cache and single-flight turn them into 50 issuances.
2. T distinct valid tokens (each a new `sub` and `jti`, so none is in the verified-token
   cache), spread over the same projects: the workerd processes' RSS is sampled from
   /proc every T/10 requests. `--same-token` is the control: T requests with one token,
   so nothing new enters any cache; what grows there is the runtime's, not the broker's.
Loopback only; every loop is bounded. Prints a Markdown table for bench/README.md.
"""
import argparse
import base64
import json
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests" / "e2e"), str(ROOT / "tests" / "helpers")]

import jwt  # noqa: E402

from conftest import Worker  # noqa: E402
from test_ecr import Moto, ecr_worker  # noqa: E402

PROJECTS = [f"app-{i:02d}" for i in range(50)]


def workerd_rss_kib(wrangler_pid):
    """RSS of the workerd processes under this wrangler (its process group)."""
    total = 0
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            text = status.read_text()
            pgid = os.getpgid(int(status.parent.name))
        except (OSError, ProcessLookupError):
            continue
        if pgid == os.getpgid(wrangler_pid) and "Name:\tworkerd" in text:
            total += int(next(line for line in text.splitlines() if line.startswith("VmRSS")).split()[1])
    return total


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--tokens", type=int, default=100_000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--same-token", action="store_true",
                        help="control run: one token for every request (what grows without new tokens)")
    args = parser.parse_args()
    import subprocess
    subprocess.run(["bash", "scripts/build.sh"], cwd=ROOT, check=True)
    secret = os.urandom(32)
    moto = Moto()
    w = ecr_worker("load", secret, moto.endpoint, moto.info["access_key_id"], moto.info["secret_access_key"])
    try:
        def token(sub):
            now = int(time.time())
            return jwt.encode({"iss": "rise-dev", "aud": "rise", "sub": sub, "iat": now, "exp": now + 3600,
                               "jti": os.urandom(8).hex(), "projects": PROJECTS}, secret, algorithm="HS256")

        shared = token("load@example.com")

        def one(i, tok=None):
            status, _, body = w.get(f"/registry/credentials?project={PROJECTS[i % 50]}", tok or shared)
            return status

        start = time.time()
        with ThreadPoolExecutor(args.concurrency) as pool:
            statuses = list(pool.map(one, range(args.requests)))
        took = time.time() - start
        errors = sum(1 for s in statuses if s != 200)
        print(f"| {args.requests} requests, {args.concurrency} concurrent, 50 projects | "
              f"{errors} errors | {args.requests / took:.0f} req/s |")
        assert errors == 0, f"{errors} non-200 answers"

        rss = [(0, workerd_rss_kib(w.proc.pid))]
        step = max(1, args.tokens // 10)
        done = 0
        with ThreadPoolExecutor(args.concurrency) as pool:
            while done < args.tokens:
                n = min(step, args.tokens - done)
                batch = [shared] * n if args.same_token else [token(f"user-{done + i}") for i in range(n)]
                statuses = list(pool.map(lambda p: one(p[0], p[1]), enumerate(batch)))
                bad = sum(1 for s in statuses if s != 200)
                assert bad == 0, f"{bad} non-200 answers"
                done += len(batch)
                rss.append((done, workerd_rss_kib(w.proc.pid)))
        print("| distinct tokens | workerd RSS (MiB) |")
        print("|---|---|")
        for n, kib in rss:
            print(f"| {n} | {kib / 1024:.1f} |")
    finally:
        w.stop()
        moto.stop()


if __name__ == "__main__":
    main()
