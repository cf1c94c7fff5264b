"""A/B of two Sluice binaries on the quick load, alternated, for changes too small for the
noise of one compare run (issue F). Not part of CI.

    python3 bench/ab.py ROUNDS BIN_A BIN_B [--size 50K] [--count N]

Each round runs each binary fresh (own sink, own data dir): smtp-source in 50 sessions,
one message per session, 5,000 messages at 1 KB (the default size; 1,000 at 50 KB, 200 at
1 MB, as compare.py): ingress and end-to-end msg/s, CPU s per 1,000, write amplification
(disk and process, as compare.py measures them); then `sluice send` 2,000 messages (or
the run's count, if fewer) for accept p50/p99, waiting until the sink has them before the
next run. Build each binary first (`cargo build --release`, copy target/release/sluice
aside) and run nothing else meanwhile: the box has two cores, and the disk counters see
every writer.
"""
import argparse
import os
import shutil
import statistics
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import compare  # noqa: E402
from measure import BlockDevice  # noqa: E402

SUMMARY = ("e2e %.0f msg/s, p50 %.1f ms, p99 %.1f ms, CPU %.2f s/1,000, "
           "write amp disk %.2f (background %.2f) process %.2f")
KEYS = ("e2e", "p50", "p99", "cpu_per_1000", "disk_amp", "background_amp", "own_amp")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("rounds", type=int)
    parser.add_argument("binaries", nargs="+")
    parser.add_argument("--size", type=compare.parse_size, default=1024,
                        help="message size: 1024, 1K, 50K, 1M (default 1 KB)")
    parser.add_argument("--count", type=int, default=5000, help="messages per run at 1 KB (fewer for larger)")
    args = parser.parse_args()
    count = compare.messages_for(args.size, args.count)
    latency_count = min(count, 2000)
    print("%d rounds, smtp-source %d × %s in 50 sessions, then sluice send %d"
          % (args.rounds, count, compare.size_label(args.size), latency_count), flush=True)
    results = [[] for _ in args.binaries]  # by position: the same path may be given twice
    for r in range(args.rounds):
        for i, binary in enumerate(args.binaries):
            compare.SLUICE = binary
            work = tempfile.mkdtemp(prefix="sluice-ab.")
            logs = tempfile.mkdtemp(prefix="sluice-ab.", dir="/dev/shm" if os.path.isdir("/dev/shm") else None)
            sink = compare.Sink(logs)
            sluice = compare.Sluice(work, sink.port)
            try:
                run = compare.throughput(sluice, sink, count, 50, args.size, 1, BlockDevice(work))
                before = sink.count()
                run.update(compare.latency(sluice, latency_count, 50, args.size, 1))
                sink.wait_for(before + latency_count, timeout=120)
            finally:
                sluice.stop()
                sink.stop()
                shutil.rmtree(work, ignore_errors=True)
                shutil.rmtree(logs, ignore_errors=True)
            results[i].append(run)
            print("round %d %s: " % (r, binary) + SUMMARY % tuple(run[k] for k in KEYS), flush=True)
    for binary, runs in zip(args.binaries, results):
        print("median %s: " % binary + SUMMARY % tuple(statistics.median(x[k] for x in runs) for k in KEYS))


if __name__ == "__main__":
    main()
