"""Sluice and Postfix side by side on this machine, loopback only.

Both relay to the same Postfix smtp-sink. Postfix runs as a private instance (its own
config and durable queue under the work directory, mynetworks loopback, relayhost the
sink); Sluice runs async, durable (SQLite WAL synchronous=FULL, or PostgreSQL), taking
the same mail on its plain trusted-network listener. Each load is driven by Postfix's
smtp-source (throughput) and by `sluice send` (accept latency), alternating A B A B.
Every wait is bounded. Results: a markdown table in bench/results/.

Run through bench/compare.sh, which installs Postfix and builds Sluice first.
"""
import argparse
import datetime
import json
import os
import platform
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SLUICE = os.path.join(ROOT, "target", "release", "sluice")
SMTP_SOURCE = "/usr/sbin/smtp-source"
SMTP_SINK = "/usr/sbin/smtp-sink"


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


def proc_stat(pid):
    """(utime+stime, cutime+cstime) in seconds, or None if gone."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    tick = os.sysconf("SC_CLK_TCK")
    own = (int(fields[11]) + int(fields[12])) / tick
    children = (int(fields[13]) + int(fields[14])) / tick
    return own, children


def rss_kb(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def descendants(pid):
    out = subprocess.run(["ps", "-e", "-o", "pid=,ppid="], capture_output=True, text=True).stdout
    children = {}
    for line in out.splitlines():
        p, pp = map(int, line.split())
        children.setdefault(pp, []).append(p)
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        found.append(p)
        todo.extend(children.get(p, []))
    return found


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


class Postfix(Target):
    name = "Postfix"

    def __init__(self, work, sink_port):
        self.dir = os.path.join(work, "postfix")
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
                "maillog_file = %s/maillog" % self.dir,
                "maillog_file_prefixes = %s" % self.dir,
                "myhostname = bench.localdomain",
                "mydestination =",
                "inet_interfaces = 127.0.0.1",
                "inet_protocols = ipv4",
                "mynetworks = 127.0.0.0/8",
                "relayhost = [127.0.0.1]:%d" % sink_port,
                "smtpd_relay_restrictions = permit_mynetworks, reject",
                "local_transport = error:local delivery disabled",
                # As many smtpd processes as the largest load has sessions.
                "default_process_limit = 150",
                "",
            ]))
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

    def peak_rss_kb(self):
        with open("/proc/%d/status" % self.process.pid) as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
        return 0

    def stop(self):
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            self.process.kill()


class Sink:
    """Postfix's smtp-sink with running counters."""

    def __init__(self, work):
        self.port = free_port()
        self.out = open(os.path.join(work, "sink.out"), "w+b")
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


class RssSampler(threading.Thread):
    def __init__(self, target):
        super().__init__(daemon=True)
        self.target, self.peak, self.running = target, 0, True

    def run(self):
        while self.running:
            self.peak = max(self.peak, self.target.rss_kb())
            time.sleep(0.1)

    def stop(self):
        self.running = False
        self.join()
        return self.peak


def throughput(target, sink, count, sessions, size, per_session):
    """smtp-source into the target: ingress and end-to-end msg/s, CPU s per 1,000, peak RSS."""
    before = sink.count()
    cpu0 = target.cpu_seconds()
    sampler = RssSampler(target)
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
    peak = sampler.stop()
    cpu = target.cpu_seconds() - cpu0
    return {
        "ingress": count / (accepted - start),
        "e2e": count / (done - start) if done else 0.0,
        "cpu_per_1000": cpu * 1000 / count,
        "rss_mb": peak / 1024,
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
    """wrk POSTing /api/v1/send: requests/s and p99 (ms)."""
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
    scale = {"us": 0.001, "ms": 1, "s": 1000}
    return {
        "rps": float(rps.group(1)) if rps else 0.0,
        "p99": float(p99.group(1)) * scale[p99.group(2)] if p99 else float("nan"),
        "non_2xx": int(non2xx.group(1)) if non2xx else 0,
    }


def median(runs, key):
    return statistics.median(r[key] for r in runs)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--mode", choices=["quick", "full"], default="quick")
    parser.add_argument("--count", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=2, help="A B rounds per load")
    parser.add_argument("--pg", default=os.environ.get("BENCH_DATABASE_URL", ""))
    args = parser.parse_args()

    if args.mode == "quick":
        loads = [(50, 1024, 1)]
    else:
        loads = [(s, size, per) for s in (10, 50, 100) for size in (1024, 51200) for per in (1, 20)]
    work = tempfile.mkdtemp(prefix="sluice-bench.")
    os.chmod(work, 0o755)  # Postfix's daemons run as the postfix user
    sink = Sink(work)
    postfix = Postfix(work, sink.port)
    sluice = Sluice(work, sink.port)
    rows, extra = [], []
    try:
        for sessions, size, per in loads:
            count = args.count if size <= 1024 else max(500, args.count // 5)
            results = {postfix.name: [], sluice.name: []}
            lat = {postfix.name: [], sluice.name: []}
            for _ in range(args.rounds):
                for target in (postfix, sluice):  # A B A B
                    results[target.name].append(throughput(target, sink, count, sessions, size, per))
                    # Each measurement starts with both relays idle: the latency run's mail
                    # is delivered before the other relay is measured.
                    before = sink.count()
                    lat[target.name].append(latency(target, min(count, 2000), sessions, size, per))
                    sink.wait_for(before + min(count, 2000), timeout=600)
            rows.append(((sessions, size, per, count), results, lat))
            print("load %d sessions, %d B, %d/session done" % (sessions, size, per), flush=True)

        if args.mode == "full":
            idle = idle_connections(sluice, 10000)
            extra.append("| Sluice, %d idle connections | RSS %.0f MB (%.0f MB before) | |"
                         % (idle["connections"], idle["rss_mb"], idle["rss_before_mb"]))
        # Sluice-only rows: STARTTLS + AUTH on the submission port; the PostgreSQL backend.
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
                pg_runs = [throughput(pg, sink, args.count, 50, 1024, 1) for _ in range(args.rounds)]
                pg_lat = [latency(pg, 2000, 50, 1024, 1) for _ in range(args.rounds)]
                pf = next((r[1][postfix.name] for r in rows if r[0][:3] == (50, 1024, 1)), None)
                ratio = median(pg_runs, "e2e") / median(pf, "e2e") if pf else float("nan")
                extra.append("| Sluice PostgreSQL, 50 sessions, 1 KB, 1/session | %.0f msg/s e2e (%.1f× Postfix) | p50 %.1f ms, p99 %.1f ms |"
                             % (median(pg_runs, "e2e"), ratio, median(pg_lat, "p50"), median(pg_lat, "p99")))
            finally:
                pg.stop()
                subprocess.run(["psql", args.pg, "-qc", "DROP DATABASE IF EXISTS %s WITH (FORCE)" % db_name])
        if shutil.which("wrk"):
            http = http_send(sluice, 10, 50)
            extra.append("| Sluice HTTP `POST /api/v1/send`, wrk 50 connections, 10 s | %.0f req/s (%d non-2xx) | p99 %.1f ms |"
                         % (http["rps"], http["non_2xx"], http["p99"]))
    finally:
        sluice.stop()
        postfix.stop()
        sink.stop()

    commit = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True).stdout.strip()
    cpu = subprocess.run(["sh", "-c", "grep -m1 'model name' /proc/cpuinfo | cut -d: -f2"],
                         capture_output=True, text=True).stdout.strip()
    lines = [
        "# Sluice vs Postfix, %s" % datetime.datetime.now().strftime("%Y-%m-%d %H:%M"),
        "",
        "Commit %s; %s, %d cores, %s; loopback; both relay to Postfix smtp-sink; "
        "Sluice SQLite (WAL, synchronous=FULL) async; medians of %d A/B rounds; "
        "throughput by smtp-source, latency by `sluice send`; each run starts once the "
        "sink has every message of the run before it."
        % (commit, cpu, os.cpu_count(), platform.platform(), args.rounds),
        "",
        "| sessions | size | msgs/session | messages | relay | ingress msg/s | e2e msg/s | accept p50 ms | accept p99 ms | CPU s / 1,000 msgs | peak RSS MB |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for (sessions, size, per, count), results, lat in rows:
        for name in (postfix.name, sluice.name):
            r, l = results[name], lat[name]
            lines.append("| %d | %d KB | %d | %d | %s | %.0f | %.0f | %.1f | %.1f | %.2f | %.0f |" % (
                sessions, size // 1024, per, count, name, median(r, "ingress"), median(r, "e2e"),
                median(l, "p50"), median(l, "p99"), median(r, "cpu_per_1000"), max(x["rss_mb"] for x in r)))
        pf, sl = results[postfix.name], results[sluice.name]
        lines.append("| | | | | **Sluice/Postfix** | **%.2f×** | **%.2f×** | | | **%.2f×** | |" % (
            median(sl, "ingress") / median(pf, "ingress"), median(sl, "e2e") / max(median(pf, "e2e"), 1e-9),
            median(sl, "cpu_per_1000") / max(median(pf, "cpu_per_1000"), 1e-9)))
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


if __name__ == "__main__":
    main()
