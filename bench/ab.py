"""A/B of two Sluice binaries on the quick load, alternated, for changes too small for the
noise of one compare run (issue F). Not part of CI.

    python3 bench/ab.py ROUNDS BIN_A BIN_B

Each round runs each binary fresh (own sink, own data dir): smtp-source 5,000 messages in
50 sessions × 1 KB (ingress and end-to-end msg/s, CPU s per 1,000), then `sluice send`
2,000 messages for accept p50/p99, waiting until the sink has them before the next run.
Build each binary first (`cargo build --release`, copy target/release/sluice aside) and
run nothing else meanwhile: the box has two cores.
"""
import os
import shutil
import statistics
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import compare  # noqa: E402


def main():
    rounds = int(sys.argv[1])
    binaries = sys.argv[2:]
    results = {b: [] for b in binaries}
    for r in range(rounds):
        for binary in binaries:
            compare.SLUICE = binary
            work = tempfile.mkdtemp(prefix="sluice-ab.")
            sink = compare.Sink(work)
            sluice = compare.Sluice(work, sink.port)
            try:
                run = compare.throughput(sluice, sink, 5000, 50, 1024, 1)
                before = sink.count()
                run.update(compare.latency(sluice, 2000, 50, 1024, 1))
                sink.wait_for(before + 2000, timeout=120)
            finally:
                sluice.stop()
                sink.stop()
                shutil.rmtree(work, ignore_errors=True)
            results[binary].append(run)
            print("round %d %s: e2e %.0f msg/s, p50 %.1f ms, p99 %.1f ms, CPU %.2f s/1,000"
                  % (r, binary, run["e2e"], run["p50"], run["p99"], run["cpu_per_1000"]), flush=True)
    for binary in binaries:
        m = lambda key: statistics.median(x[key] for x in results[binary])  # noqa: E731
        print("median %s: e2e %.0f msg/s, p50 %.1f ms, p99 %.1f ms, CPU %.2f s/1,000"
              % (binary, m("e2e"), m("p50"), m("p99"), m("cpu_per_1000")))


if __name__ == "__main__":
    main()
