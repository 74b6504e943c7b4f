#!/usr/bin/env python3
"""Cold start on raw workerd: median over N fresh processes, the workers alternating.

    python3 bench/coldstart.py <workerd> <N> <token> <label>=<dir>:<port> ...

For each start: process start → the socket accepts (workerd up, the script loaded and,
for ours, the Wasm compiled and instantiated); → the first 200 for
`/registry/credentials?project=p0` (for ours: config loaded, keys imported into
WebCrypto, token verified, AssumeRole + GetAuthorizationToken, every function on that
path compiled by V8 on its first call); then a second project on the warm process.
A tight loop polls (0.5 ms) instead of curl + sleep, whose granularity was 10 ms.
Prints a Markdown table; the ratio column is against the label `js`.
"""
import http.client
import statistics
import subprocess
import sys
import time


def one(workerd, directory, port, token):
    t0 = time.perf_counter()
    proc = subprocess.Popen([workerd, "serve", "config.capnp"], cwd=directory,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while True:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                conn.connect()
                break
            except OSError:
                if proc.poll() is not None:
                    sys.exit(f"workerd in {directory} exited with {proc.returncode}")
                time.sleep(0.0005)
        t_listen = time.perf_counter()
        marks = []
        for project in ("p0", "p1"):
            conn.request("GET", f"/registry/credentials?project={project}",
                         headers={"Authorization": f"Bearer {token}"})
            resp = conn.getresponse()
            resp.read()
            if resp.status != 200:
                sys.exit(f"{directory}: {project} answered {resp.status}")
            marks.append(time.perf_counter())
        return ((t_listen - t0) * 1000, (marks[0] - t0) * 1000, (marks[1] - marks[0]) * 1000)
    finally:
        proc.kill()
        proc.wait()


def main():
    workerd, n, token = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    workers = []
    for arg in sys.argv[4:]:
        label, rest = arg.split("=", 1)
        directory, port = rest.rsplit(":", 1)
        workers.append((label, directory, int(port)))
    rows = {label: [] for label, _, _ in workers}
    for _ in range(n):
        for label, directory, port in workers:
            rows[label].append(one(workerd, directory, port, token))
    med = {label: [statistics.median(c) for c in zip(*r)] for label, r in rows.items()}
    print(f"| worker | start → listening (ms) | start → first 200 (ms) | / JS | second project (ms) |")
    print("|---|---|---|---|---|")
    for label, (listen, first, second) in med.items():
        ratio = f"{first / med['js'][1]:.2f}" if "js" in med and label != "js" else ""
        print(f"| {label} | {listen:.1f} | {first:.1f} | {ratio} | {second:.1f} |")
    print(f"\n(median of {n} fresh processes each, alternating)")


if __name__ == "__main__":
    main()
