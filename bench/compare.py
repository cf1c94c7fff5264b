"""Sluice and Postfix side by side on this machine, loopback only.

All relays send to the same Postfix smtp-sink. Postfix runs as two private instances (own
config and durable queue under the work directory, mynetworks loopback, relayhost the
sink): one as installed, one tuned as its operators tune a high-volume relay. Sluice runs
async, durable (SQLite WAL synchronous=FULL, or PostgreSQL), taking the same mail on its
plain trusted-network listener. Each load (sessions x message size x messages per session)
is driven by Postfix's smtp-source (throughput, disk writes, memory) and by `sluice send`
(accept latency), the relays alternating A B C A B C. Every wait is bounded. Results: a
markdown table in bench/results/.

Run through bench/compare.sh, which installs Postfix and builds Sluice first. SLUICE_BIN
picks another binary.
"""
import argparse
import datetime
import os
import platform
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import tempfile
import time

from measure import BlockDevice, MemorySampler, descendants, proc_stat, rss_kb, tree_write_bytes

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SLUICE = os.environ.get("SLUICE_BIN") or os.path.join(ROOT, "target", "release", "sluice")
SMTP_SOURCE = "/usr/sbin/smtp-source"
SMTP_SINK = "/usr/sbin/smtp-sink"
KB, MB = 1024, 1024 * 1024
# After the sink has every message: time for the relay's last bookkeeping (Postfix removes
# the queue file; Sluice marks the rows delivered and its background WAL checkpoint, every
# 100 ms, copies the WAL into the database file) before `sync` and the disk counters.
SETTLE_SECONDS = 1.0
# Before each load: how much the rest of the machine writes to the disk meanwhile.
IDLE_SECONDS = 2.0


def size_label(size):
    return "%d MB" % (size // MB) if size >= MB else "%d KB" % (size // KB)


def parse_size(text):
    """'1024', '50K', '50KB', '1M' -> bytes."""
    found = re.fullmatch(r"(\d+)\s*([KkMm]?)[Bb]?", text.strip())
    if not found:
        raise ValueError("not a size: %r" % text)
    return int(found.group(1)) * {"": 1, "k": KB, "m": MB}[found.group(2).lower()]


def messages_for(size, count):
    """Messages per run: `count` at 1 KB, a fifth of it at 50 KB, a 25th at 1 MB (5,000, 1,000
    and 200 by default: 5, 50 and 200 MB of mail), never under 500 and 100 for the larger two."""
    if size >= MB:
        return max(100, count // 25)
    if size > KB:
        return max(500, count // 5)
    return count


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, timeout=20):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit("port %d never opened" % port)


class Target:
    """A relay under test: a root pid whose process tree is measured."""

    name = ""
    port = 0

    def root_pid(self):
        raise NotImplementedError

    def cpu_seconds(self):
        pids = descendants(self.root_pid())
        total = 0.0
        for i, pid in enumerate(pids):
            stat = proc_stat(pid)
            if stat:
                # The root's reaped children count in its cutime/cstime.
                total += stat[0] + (stat[1] if i == 0 else 0)
        return total

    def rss_kb(self):
        return sum(rss_kb(p) for p in descendants(self.root_pid()))

    def write_bytes(self):
        return tree_write_bytes(self.root_pid())

    def settle(self):
        """Puts on disk what the relay keeps only in memory for now (PostgreSQL's dirty buffers)."""


# postconf(5) parameters a high-volume relay's operator changes from the defaults:
# in_flow_delay (1s: smtpd pauses before each message while the queue is behind),
# default_process_limit (100 processes per service), smtpd_client_connection_count_limit
# (50 per client; loopback is exempt anyway through smtpd_client_event_limit_exceptions),
# default_destination_concurrency_limit / smtp_destination_concurrency_limit (20 parallel
# deliveries to one destination, and every message here goes to one: the sink) and
# initial_destination_concurrency (5, the slow start of that concurrency).
POSTFIX_TUNED = [
    "in_flow_delay = 0",
    "default_process_limit = 500",
    "smtpd_client_connection_count_limit = 1000",
    "default_destination_concurrency_limit = 100",
    "smtp_destination_concurrency_limit = 100",
    "initial_destination_concurrency = 100",
]


class Postfix(Target):
    name = "Postfix"

    def __init__(self, work, sink_port, logs, tuned=False):
        self.name = "Postfix tuned" if tuned else "Postfix"
        self.dir = os.path.join(work, self.name.replace(" ", "-").lower())
        self.etc = os.path.join(self.dir, "etc")
        os.makedirs(self.etc)
        for f in ("master.cf", "dynamicmaps.cf"):
            shutil.copy(os.path.join("/etc/postfix", f), self.etc)
        os.makedirs(os.path.join(self.dir, "spool"))
        os.makedirs(os.path.join(self.dir, "data"))
        shutil.chown(os.path.join(self.dir, "data"), "postfix")
        self.port = free_port()
        with open(os.path.join(self.etc, "main.cf"), "w") as f:
            f.write("\n".join([
                "compatibility_level = 3.6",
                "queue_directory = %s/spool" % self.dir,
                "data_directory = %s/data" % self.dir,
                # The mail log on tmpfs, as Sluice's log goes to /dev/null: disk writes
                # measured are the queue's.
                "maillog_file = %s/%s.maillog" % (logs, os.path.basename(self.dir)),
                "maillog_file_prefixes = %s" % logs,
                "myhostname = bench.localdomain",
                "mydestination =",
                "inet_interfaces = 127.0.0.1",
                "inet_protocols = ipv4",
                "mynetworks = 127.0.0.0/8",
                "relayhost = [127.0.0.1]:%d" % sink_port,
                "smtpd_relay_restrictions = permit_mynetworks, reject",
                "local_transport = error:local delivery disabled",
            ] + (POSTFIX_TUNED if tuned else [
                # As many smtpd processes as the largest load has sessions.
                "default_process_limit = 150",
            ]) + [""]))
        master = open(os.path.join(self.etc, "master.cf")).read()
        master = re.sub(r"^smtp\s+inet\s+n\s+-\s+y\s+-\s+-\s+smtpd",
                        "127.0.0.1:%d inet n - n - - smtpd" % self.port, master, flags=re.M)
        with open(os.path.join(self.etc, "master.cf"), "w") as f:
            f.write(master)
        subprocess.run(["postfix", "-c", self.etc, "check"], check=True)
        subprocess.run(["postfix", "-c", self.etc, "start"], check=True)
        wait_port(self.port)

    def root_pid(self):
        with open(os.path.join(self.dir, "spool", "pid", "master.pid")) as f:
            return int(f.read().strip())

    def stop(self):
        subprocess.run(["postfix", "-c", self.etc, "stop"], capture_output=True)


class Sluice(Target):
    name = "Sluice"

    def __init__(self, work, sink_port, database=None, label="Sluice"):
        self.name = label
        self.database = database
        self.dir = os.path.join(work, label.replace(" ", "-").lower())
        os.makedirs(self.dir)
        self.port = free_port()
        self.submission = free_port()
        self.http = free_port()
        db = 'url = "%s"' % database if database else ""
        config = os.path.join(self.dir, "sluice.toml")
        with open(config, "w") as f:
            f.write("""data_dir = "%s/data"
[database]
%s
[smtp]
trusted_networks = ["127.0.0.0/8"]
trusted_account = "bench@example.com"
max_connections = 20000
# Every bench session sends as one account.
max_connections_per_account = 0
[[smtp.listeners]]
addr = "127.0.0.1:%d"
tls = "none"
auth = "none"
[[smtp.listeners]]
addr = "127.0.0.1:%d"
tls = "starttls"
auth = "required"
[delivery.default_provider]
type = "smtp"
host = "127.0.0.1"
port = %d
security = "none"
[http]
listen = "127.0.0.1:%d"
[webhook]
listen = "127.0.0.1:%d"
[panel]
listen = "127.0.0.1:%d"
[api]
rate_limit_per_minute = 100000000
send_rate_limit_per_key_per_hour = 100000000
[logging]
level = "warn"
""" % (self.dir, db, self.port, self.submission, sink_port, self.http, free_port(), free_port()))
        created = subprocess.run(
            [SLUICE, "account", "create", "--config", config, "--name", "bench",
             "--email", "bench@example.com", "--password", "bench-password", "--domain", "example.com",
             "--monthly-limit", "1000000000"],
            check=True, capture_output=True, text=True)
        self.api_key = re.search(r"api key:\s+(\S+)", created.stdout).group(1)
        self.process = subprocess.Popen([SLUICE, "serve", "--config", config],
                                        stdout=subprocess.DEVNULL)
        wait_port(self.port)
        wait_port(self.http)

    def root_pid(self):
        return self.process.pid

    def settle(self):
        if self.database:
            # The rows' heap and index pages, which PostgreSQL writes at its next checkpoint.
            subprocess.run(["psql", self.database, "-qc", "CHECKPOINT"], check=True,
                           capture_output=True)

    def stop(self):
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            self.process.kill()


class Sink:
    """Postfix's smtp-sink with running counters, written to a file on tmpfs (logs)."""

    def __init__(self, logs):
        self.port = free_port()
        self.out = open(os.path.join(logs, "sink.out"), "w+b")
        self.process = subprocess.Popen(
            [SMTP_SINK, "-c", "-u", "postfix", "127.0.0.1:%d" % self.port, "1000"],
            stdout=self.out, stderr=subprocess.DEVNULL)
        wait_port(self.port)

    def count(self):
        self.out.flush()
        with open(self.out.name, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 200))
            tail = f.read().decode(errors="replace")
        found = re.findall(r"mesg=(\d+)", tail)
        return int(found[-1]) if found else 0

    def wait_for(self, target, timeout):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.count() >= target:
                return time.time()
            time.sleep(0.02)
        return None

    def stop(self):
        self.process.kill()


def throughput(target, sink, count, sessions, size, per_session, disk):
    """smtp-source into the target: ingress and end-to-end msg/s, CPU s per 1,000, peak PSS and
    RSS sum, and bytes written per byte of mail: to the disk (every writer on it, jbd2's
    journal included) and by the target's processes (/proc/PID/io), from before the load
    until the sink has every message, the relay has settled and `sync` has returned."""
    before = sink.count()
    target.settle()
    # The machine's other writers, measured over an idle window just before the load.
    idle0, idle_start = disk.bytes_written(), time.time()
    time.sleep(IDLE_SECONDS)
    disk0, window_start = disk.bytes_written(), time.time()
    background = (disk0 - idle0) / (window_start - idle_start)
    own0 = target.write_bytes()
    cpu0 = target.cpu_seconds()
    sampler = MemorySampler(target)
    sampler.start()
    args = [SMTP_SOURCE, "-s", str(sessions), "-m", str(count), "-l", str(size),
            "-f", "bench@example.com", "-t", "sink@dest.test"]
    if per_session > 1:
        args += ["-d"]  # do not disconnect after each message
    args.append("127.0.0.1:%d" % target.port)
    start = time.time()
    subprocess.run(args, check=True, timeout=600, stdout=subprocess.DEVNULL)
    accepted = time.time()
    done = sink.wait_for(before + count, timeout=600)
    peak_rss, peak_pss = sampler.stop()
    cpu = target.cpu_seconds() - cpu0
    time.sleep(SETTLE_SECONDS)
    target.settle()
    own = target.write_bytes() - own0
    written = disk.bytes_written() - disk0
    window = time.time() - window_start
    mail = count * size
    return {
        "ingress": count / (accepted - start),
        "e2e": count / (done - start) if done else 0.0,
        "cpu_per_1000": cpu * 1000 / count,
        "rss_mb": peak_rss / 1024,
        "pss_mb": peak_pss / 1024,
        "disk_amp": written / mail,
        "background_amp": background * window / mail,
        "own_amp": own / mail,
    }


def latency(target, count, sessions, size, per_session, tls=False, sluice=None):
    """`sluice send` into the target: accept latency p50/p99 (ms)."""
    args = [SLUICE, "send", "--host", "127.0.0.1", "--from", "bench@example.com",
            "--to", "sink@dest.test", "--count", str(count), "--concurrency", str(sessions),
            "--size", str(size), "--per-session", str(per_session)]
    if tls:
        args += ["--port", str(sluice.submission), "--tls", "starttls", "--insecure",
                 "--user", "bench@example.com", "--password", "bench-password"]
    else:
        args += ["--port", str(target.port), "--tls", "none"]
    out = subprocess.run(args, capture_output=True, text=True, timeout=600).stdout
    found = re.search(r"p50 ([\d.]+) ms, p99 ([\d.]+) ms", out)
    rate = re.search(r"rate:\s+([\d.]+)", out)
    return {
        "p50": float(found.group(1)) if found else float("nan"),
        "p99": float(found.group(2)) if found else float("nan"),
        "send_rate": float(rate.group(1)) if rate else 0.0,
    }


def idle_connections(target, n):
    """Opens n SMTP connections, reads each greeting, holds them; the target's RSS."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    n = min(n, hard - 100)
    held = []
    before = target.rss_kb()
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", target.port), timeout=10)
        held.append(s)
    for s in held:
        s.recv(512)
    time.sleep(1)
    rss = target.rss_kb()
    for s in held:
        s.close()
    return {"connections": n, "rss_mb": rss / 1024, "rss_before_mb": before / 1024}


def http_send(sluice, seconds, connections):
    """wrk POSTing /api/v1/send (a 900-byte text body): requests/s, p99 (ms), messages accepted."""
    script = os.path.join(sluice.dir, "send.lua")
    with open(script, "w") as f:
        f.write('wrk.method = "POST"\n'
                'wrk.headers["Content-Type"] = "application/json"\n'
                'wrk.headers["Authorization"] = "Bearer %s"\n'
                'wrk.body = \'{"from":"bench@example.com","to":"sink@dest.test",'
                '"subject":"bench","text":"%s"}\'\n' % (sluice.api_key, "x" * 900))
    out = subprocess.run(["wrk", "-t2", "-c%d" % connections, "-d%ds" % seconds, "--latency",
                          "-s", script, "http://127.0.0.1:%d/api/v1/send" % sluice.http],
                         capture_output=True, text=True, timeout=seconds + 60).stdout
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    requests = re.search(r"(\d+) requests in", out)
    scale = {"us": 0.001, "ms": 1, "s": 1000}
    non_2xx = int(non2xx.group(1)) if non2xx else 0
    return {
        "rps": float(rps.group(1)) if rps else 0.0,
        "p99": float(p99.group(1)) * scale[p99.group(2)] if p99 else float("nan"),
        "non_2xx": non_2xx,
        "accepted": (int(requests.group(1)) if requests else 0) - non_2xx,
    }


def median(runs, key):
    return statistics.median(r[key] for r in runs)


def measure_load(targets, sink, disk, load, rounds):
    """Throughput, then latency, for each target in turn (A B C A B C). Each measurement starts
    with every relay idle: the latency run's mail is delivered before the next one starts."""
    sessions, size, per, count = load
    results = {t.name: [] for t in targets}
    lat = {t.name: [] for t in targets}
    for _ in range(rounds):
        for target in targets:
            results[target.name].append(throughput(target, sink, count, sessions, size, per, disk))
            before, n = sink.count(), min(count, 2000)
            lat[target.name].append(latency(target, n, sessions, size, per))
            sink.wait_for(before + n, timeout=600)
    return results, lat


COLUMNS = ["sessions", "size", "msgs/session", "messages", "relay", "ingress msg/s", "e2e msg/s",
           "e2e MB/s", "accept p50 ms", "accept p99 ms", "CPU s / 1,000 msgs", "disk write amp",
           "process write amp", "peak PSS MB", "peak RSS sum MB"]


def table_header():
    return ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]


def table_rows(load, results, lat, subject, baselines):
    """One row per relay (baselines first), then subject/baseline ratios of ingress, e2e and CPU."""
    sessions, size, per, count = load
    lines = []
    for name in baselines + [subject]:
        r, l = results[name], lat[name]
        cells = [str(sessions), size_label(size), str(per), str(count), name,
                 "%.0f" % median(r, "ingress"), "%.0f" % median(r, "e2e"),
                 "%.1f" % (median(r, "e2e") * size / MB), "%.1f" % median(l, "p50"),
                 "%.1f" % median(l, "p99"), "%.2f" % median(r, "cpu_per_1000"),
                 "%.2f (bg %.2f)" % (median(r, "disk_amp"), median(r, "background_amp")),
                 "%.2f" % median(r, "own_amp"),
                 "%.0f" % max(x["pss_mb"] for x in r), "%.0f" % max(x["rss_mb"] for x in r)]
        lines.append("| " + " | ".join(cells) + " |")
    for base in baselines:
        a, b = results[subject], results[base]
        cells = [""] * 4 + ["**%s / %s**" % (subject, base)]
        cells += ["**%.2f×**" % (median(a, key) / max(median(b, key), 1e-9)) for key in ("ingress", "e2e")]
        cells += [""] * 3 + ["**%.2f×**" % (median(a, "cpu_per_1000") / max(median(b, "cpu_per_1000"), 1e-9))]
        cells += [""] * 4
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--mode", choices=["quick", "full"], default="quick")
    parser.add_argument("--count", type=int, default=5000, help="messages per 1 KB run (fewer for larger)")
    parser.add_argument("--sizes", default="1K,50K,1M", help="message sizes, comma-separated")
    parser.add_argument("--rounds", type=int, default=2, help="A B C rounds per load")
    parser.add_argument("--pg", default=os.environ.get("BENCH_DATABASE_URL", ""))
    args = parser.parse_args()

    sizes = [parse_size(s) for s in args.sizes.split(",")]
    if args.mode == "quick":
        loads = [(50, size, 1) for size in sizes]
    else:
        loads = [(s, size, per) for s in (10, 50, 100) for size in sizes for per in (1, 20)]
    loads = [(s, size, per, messages_for(size, args.count)) for s, size, per in loads]
    work = tempfile.mkdtemp(prefix="sluice-bench.")
    os.chmod(work, 0o755)  # Postfix's daemons run as the postfix user
    # Off the measured disk: the sink's counters and Postfix's mail log.
    logs = tempfile.mkdtemp(prefix="sluice-bench.", dir="/dev/shm" if os.path.isdir("/dev/shm") else None)
    os.chmod(logs, 0o755)
    disk = BlockDevice(work)
    sink = Sink(logs)
    postfix = Postfix(work, sink.port, logs)
    tuned = Postfix(work, sink.port, logs, tuned=True)
    sluice = Sluice(work, sink.port)
    relays = [postfix, tuned, sluice]
    background = [disk.background_rate(5)]
    rows, backend_rows, extra = [], [], []
    try:
        for load in loads:
            results, lat = measure_load(relays, sink, disk, load, args.rounds)
            rows += table_rows(load, results, lat, sluice.name, [postfix.name, tuned.name])
            print("load %d sessions, %s, %d/session done" % (load[0], size_label(load[1]), load[2]), flush=True)

        if args.mode == "full":
            idle = idle_connections(sluice, 10000)
            extra.append("| Sluice, %d idle connections | RSS %.0f MB (%.0f MB before) | |"
                         % (idle["connections"], idle["rss_mb"], idle["rss_before_mb"]))
        # Sluice-only rows: STARTTLS + AUTH on the submission port; the PostgreSQL backend
        # alternated with SQLite; HTTP alternated with SMTP.
        tls = [latency(sluice, 2000, 50, 1024, 1, tls=True, sluice=sluice) for _ in range(args.rounds)]
        extra.append("| Sluice, STARTTLS + AUTH (submission), 50 sessions, 1 KB | %.0f msg/s accepted | p50 %.1f ms, p99 %.1f ms |"
                     % (median(tls, "send_rate"), median(tls, "p50"), median(tls, "p99")))
        if args.pg:
            # A fresh database on that server for this run, dropped afterwards.
            db_name = "sluice_bench_%d" % os.getpid()
            subprocess.run(["psql", args.pg, "-qc", "CREATE DATABASE %s" % db_name], check=True)
            pg = Sluice(work, sink.port, database=args.pg.rsplit("/", 1)[0] + "/" + db_name,
                        label="Sluice PostgreSQL")
            try:
                load = (50, KB, 1, args.count)
                results, lat = measure_load([sluice, pg], sink, disk, load, args.rounds)
                backend_rows = table_rows(load, results, lat, pg.name, [sluice.name])
            finally:
                pg.stop()
                subprocess.run(["psql", args.pg, "-qc", "DROP DATABASE IF EXISTS %s WITH (FORCE)" % db_name])
        if shutil.which("wrk"):
            http, smtp = [], []
            for _ in range(args.rounds):
                before = sink.count()
                http.append(http_send(sluice, 10, 50))
                sink.wait_for(before + http[-1]["accepted"], timeout=600)
                smtp.append(throughput(sluice, sink, args.count, 50, KB, 1, disk))
            extra.append("| Sluice HTTP `POST /api/v1/send`, wrk 50 connections, 10 s, 900-byte text | %.0f req/s (%d non-2xx) | p99 %.1f ms |"
                         % (median(http, "rps"), sum(h["non_2xx"] for h in http), median(http, "p99")))
            extra.append("| Sluice SMTP in the same rounds, smtp-source 50 sessions, 1 KB, %d messages | %.0f msg/s ingress, %.0f e2e | |"
                         % (args.count, median(smtp, "ingress"), median(smtp, "e2e")))
        background.append(disk.background_rate(5))
    finally:
        sluice.stop()
        tuned.stop()
        postfix.stop()
        sink.stop()

    commit = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True).stdout.strip()
    cpu = subprocess.run(["sh", "-c", "grep -m1 'model name' /proc/cpuinfo | cut -d: -f2"],
                         capture_output=True, text=True).stdout.strip()
    postfix_version = subprocess.run(["postconf", "-d", "-h", "mail_version"],
                                     capture_output=True, text=True).stdout.strip()
    lines = [
        "# Sluice vs Postfix, %s" % datetime.datetime.now().strftime("%Y-%m-%d %H:%M"),
        "",
        "Commit %s (binary %s); %s, %d cores, %s; Postfix %s; loopback; all relay to one Postfix smtp-sink; "
        "Sluice SQLite (WAL, synchronous=FULL) async; medians of %d rounds alternating the relays; "
        "throughput by smtp-source, latency by `sluice send`; each run starts once the "
        "sink has every message of the run before it."
        % (commit, SLUICE, cpu, os.cpu_count(), platform.platform(),
           postfix_version, args.rounds),
        "",
        "Postfix: a private instance with `default_process_limit = 150`, the rest as installed. "
        "Postfix tuned: `%s`." % "`, `".join(POSTFIX_TUNED),
        "",
        "Write amplification: bytes written per byte of mail (messages × size). *disk*: sectors "
        "written to %s, the device under the work directory, from a `sync` before smtp-source "
        "starts to a `sync` once the sink has every message and %.0f s more (Sluice's WAL "
        "checkpoint runs every 100 ms; PostgreSQL gets a `CHECKPOINT` before both readings). It "
        "includes the file system's journal and every other writer on the machine: *bg* is "
        "what the disk took in the %.0f s before the load, at that rate over the load's window, "
        "per byte of mail (%.0f KB/s in an idle 5 s before all runs, %.0f KB/s after). *process*: the relay's own "
        "`/proc/PID/io` write_bytes (Postfix: master and every child, reaped ones included; "
        "the PostgreSQL server's writes are not Sluice's), counted each time a page is dirtied "
        "(a page written again after its writeback, as in SQLite's WAL, counts again, so this "
        "can exceed the disk's figure), no journal. The sink's counters and Postfix's mail log are on tmpfs; Sluice logs at warn "
        "to /dev/null. Memory: peak of 0.5 s samples of the sum of `Pss:` "
        "(`/proc/PID/smaps_rollup`) over the relay's processes; the RSS sum counts each shared "
        "page once per process that maps it."
        % (disk.name, SETTLE_SECONDS, IDLE_SECONDS, background[0] / 1024, background[-1] / 1024),
        "",
    ] + table_header() + rows
    if backend_rows:
        lines += ["", "Storage backends, alternated in the same rounds:", ""] + table_header() + backend_rows
    if extra:
        lines += ["", "| other runs | result | latency |", "|---|---|---|"] + extra
    report = "\n".join(lines) + "\n"
    os.makedirs(os.path.join(ROOT, "bench", "results"), exist_ok=True)
    path = os.path.join(ROOT, "bench", "results",
                        "compare-%s-%s.md" % (datetime.datetime.now().strftime("%Y%m%d-%H%M"), args.mode))
    with open(path, "w") as f:
        f.write(report)
    print(report)
    print("written to %s" % path)
    shutil.rmtree(work, ignore_errors=True)
    shutil.rmtree(logs, ignore_errors=True)


if __name__ == "__main__":
    main()
