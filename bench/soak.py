"""Soak (issue P): Sluice under a steady load for a long time, killed with SIGKILL every few
minutes and restarted, reporting over time its RSS, open file descriptors, queue depth, and
at the end what was lost or delivered twice. Not part of CI.

    python3 bench/soak.py [--minutes 60] [--rate R] [--kill-every 180] [--size 2K]

The load: `--threads` smtplib clients on Sluice's plain trusted-network listener, paced to
`--rate` messages per second in all (by default half of the end-to-end rate measured
with a 20 s burst at the start: acknowledged and delivered, not only acknowledged), each message numbered (X-Soak-Seq). The upstream: an aiosmtpd sink in this
process that records the numbers it receives. A message is acknowledged when its client
heard 250 to the end of data; while Sluice is down or restarting, clients get refusals or
connection errors, which are not acknowledgements (a client would send again).

At the end the load stops, Sluice runs until its queue is empty (or `--drain` seconds), and
the report says: acknowledged, received, lost (acknowledged, never received), duplicates
(received more than once: a kill between the upstream's 250 and the attempt's record), and
received without an acknowledgement (committed, the 250 lost with the process). Results go
to bench/results/soak-<date>.md. Build first: `cargo build --release -p sluice`
(SLUICE_BIN picks another binary).
"""
import argparse
import collections
import datetime
import os
import signal
import smtplib
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import compare  # noqa: E402
from measure import rss_kb  # noqa: E402

from aiosmtpd.controller import Controller  # noqa: E402


class Recorder:
    """The upstream: counts each X-Soak-Seq it is handed."""

    def __init__(self):
        self.seen = collections.Counter()
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):
        content = envelope.original_content or b""
        head = content.split(b"\r\n\r\n", 1)[0]
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"x-soak-seq:"):
                with self.lock:
                    self.seen[int(line.split(b":", 1)[1])] += 1
        return "250 2.0.0 Ok"


class Load:
    """Paced smtplib clients; which numbers were acknowledged, and how many refusals."""

    def __init__(self, port, rate, threads, size):
        self.port, self.rate, self.threads, self.size = port, rate, threads, size
        self.acked = set()
        self.refused = 0
        self.lock = threading.Lock()
        self.next_seq = 0
        self.stop = threading.Event()
        self.workers = [threading.Thread(target=self.run, daemon=True) for _ in range(threads)]

    def take_seq(self):
        with self.lock:
            self.next_seq += 1
            return self.next_seq

    def message(self, seq):
        body = ("soak message %d\r\n" % seq) * max(1, self.size // 20)
        return ("From: soak@example.com\r\nTo: r@dest.test\r\nSubject: soak %d\r\n"
                "X-Soak-Seq: %d\r\n\r\n%s" % (seq, seq, body)).encode()

    def run(self):
        interval = self.threads / self.rate
        client = None
        due = time.time()
        while not self.stop.is_set():
            due += interval
            pause = due - time.time()
            if pause > 0:
                time.sleep(pause)
            seq = self.take_seq()
            try:
                if client is None:
                    client = smtplib.SMTP("127.0.0.1", self.port, timeout=10)
                client.sendmail("soak@example.com", ["r@dest.test"], self.message(seq))
                with self.lock:
                    self.acked.add(seq)
            except (smtplib.SMTPException, OSError):
                with self.lock:
                    self.refused += 1
                try:
                    if client is not None:
                        client.close()
                except OSError:
                    pass
                client = None
                due = time.time()

    def start(self):
        for w in self.workers:
            w.start()

    def finish(self):
        self.stop.set()
        for w in self.workers:
            w.join(30)


def queue_depth(db_path):
    try:
        with sqlite3.connect("file:%s?mode=ro" % db_path, uri=True, timeout=2) as db:
            return db.execute(
                "SELECT count(*) FROM messages WHERE status IN ('queued', 'deferred')"
            ).fetchone()[0]
    except sqlite3.Error:
        return None


def anon_kb(pid):
    """RssAnon: the process's own memory, without the file pages SQLite maps
    (`mmap_size`, 256 MiB), which VmRSS counts once a scan has touched them."""
    try:
        with open("/proc/%d/status" % pid) as status:
            for line in status:
                if line.startswith("RssAnon:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def open_fds(pid):
    try:
        return len(os.listdir("/proc/%d/fd" % pid))
    except OSError:
        return None


def restart(sluice):
    config = os.path.join(sluice.dir, "sluice.toml")
    sluice.process = subprocess.Popen([compare.SLUICE, "serve", "--config", config],
                                      stdout=subprocess.DEVNULL)
    compare.wait_port(sluice.port, timeout=60)


def measure_max_rate(sluice, recorder, db_path, size, seconds=20, drain=300):
    """The most Sluice sustains end to end, in msg/s: a 50-thread unpaced load for
    `seconds`, then the time until the upstream has everything. Acknowledging runs ahead
    of delivering (the queue absorbs a burst), so pacing at half the acknowledgement rate
    grows the queue without bound; the soak paces at half of this one. Also returns the
    acknowledgement rate, for the report."""
    start = time.time()
    load = Load(sluice.port, rate=1e9, threads=50, size=size)
    load.start()
    time.sleep(seconds)
    load.finish()
    ack_rate = len(load.acked) / seconds
    deadline = time.time() + drain
    while (queue_depth(db_path) or 0) > 0 and time.time() < deadline:
        time.sleep(0.5)
    return sum(recorder.seen.values()) / (time.time() - start), ack_rate


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--minutes", type=float, default=60)
    parser.add_argument("--rate", type=float, default=0, help="msg/s (default: half the max)")
    parser.add_argument("--kill-every", type=float, default=180, help="seconds between kill -9")
    parser.add_argument("--sample-every", type=float, default=10)
    parser.add_argument("--threads", type=int, default=20)
    parser.add_argument("--size", type=compare.parse_size, default=2048)
    parser.add_argument("--drain", type=float, default=300)
    args = parser.parse_args()

    recorder = Recorder()
    sink = Controller(recorder, hostname="127.0.0.1", port=compare.free_port())
    sink.start()
    work = tempfile.mkdtemp(prefix="sluice-soak-")
    sluice = compare.Sluice(work, sink.port)
    db_path = os.path.join(sluice.dir, "data", "sluice.db")
    rate, measured = args.rate, "given"
    if not rate:
        end_to_end, ack_rate = measure_max_rate(sluice, recorder, db_path, args.size,
                                                drain=args.drain)
        rate = end_to_end / 2
        measured = ("measured: %.0f msg/s end to end, %.0f msg/s acknowledged"
                    % (end_to_end, ack_rate))
        print("%s; soaking at %.0f" % (measured, rate), flush=True)
    # The burst's mail is not part of the soak's accounting.
    recorder.seen.clear()

    load = Load(sluice.port, rate, args.threads, args.size)
    start = time.time()
    load.start()
    samples, kills = [], 0
    next_kill = start + args.kill_every
    end = start + args.minutes * 60
    while time.time() < end:
        time.sleep(args.sample_every)
        pid = sluice.process.pid
        samples.append((time.time() - start, rss_kb(pid), anon_kb(pid), open_fds(pid),
                        queue_depth(db_path), len(load.acked), sum(recorder.seen.values()),
                        load.refused))
        t, rss, anon, fds, depth, acked, got, refused = samples[-1]
        print("%6.0f s  rss %s KB (anon %s)  fds %s  queue %s  acked %d  received %d  refused %d"
              % (t, rss, anon, fds, depth, acked, got, refused), flush=True)
        if time.time() >= next_kill:
            sluice.process.send_signal(signal.SIGKILL)
            sluice.process.wait()
            kills += 1
            restart(sluice)
            next_kill = time.time() + args.kill_every
    load.finish()
    deadline = time.time() + args.drain
    while (queue_depth(db_path) or 0) > 0 and time.time() < deadline:
        time.sleep(1)
    time.sleep(2)
    sluice.stop()
    sink.stop()

    acked = load.acked
    seen = recorder.seen
    lost = sorted(s for s in acked if seen[s] == 0)
    duplicates = sorted(s for s, n in seen.items() if n > 1)
    unacked_received = sorted(s for s in seen if s not in acked)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M")
    out = os.path.join(compare.ROOT, "bench", "results", "soak-%s.md" % stamp)
    with open(out, "w") as f:
        f.write("# Sluice soak, %s\n\n" % datetime.datetime.now().strftime("%Y-%m-%d %H:%M"))
        f.write("Binary %s; %.0f min at %.0f msg/s (rate %s; %d threads, %d-byte messages), "
                "SQLite, kill -9 every %.0f s (%d kills), restarted at once.\n\n"
                % (compare.SLUICE, args.minutes, rate, measured, args.threads, args.size,
                   args.kill_every, kills))
        f.write("| acknowledged | received | lost | delivered twice | received, not acknowledged"
                " | refused or cut |\n|---|---|---|---|---|---|\n")
        f.write("| %d | %d | %d | %d | %d | %d |\n\n"
                % (len(acked), len(seen), len(lost), len(duplicates), len(unacked_received),
                   load.refused))
        if lost:
            f.write("Lost: %s\n\n" % lost[:50])
        f.write("| s | RSS KB | anon KB | open fds | queue depth | acknowledged | received "
                "| refused |\n|---|---|---|---|---|---|---|---|\n")
        for row in samples:
            f.write("| %.0f | %s | %s | %s | %s | %d | %d | %d |\n" % row)
    print("lost %d, delivered twice %d, report %s" % (len(lost), len(duplicates), out))
    sys.exit(1 if lost else 0)


if __name__ == "__main__":
    main()
