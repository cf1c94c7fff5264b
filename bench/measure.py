"""What bench/compare.py reads from /proc and /sys: CPU time, memory (RSS and PSS), bytes
written by a process tree, and a block device's sectors written. Linux only; run as root
(Postfix's daemons run as the postfix user, and their /proc files are readable by root).
"""
import os
import subprocess
import threading
import time

SECTOR = 512  # /sys/block/*/stat counts 512-byte sectors whatever the device's own size


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


def _field_kb(path, name):
    try:
        with open(path) as f:
            for line in f:
                if line.startswith(name):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def rss_kb(pid):
    return _field_kb("/proc/%d/status" % pid, "VmRSS:")


def pss_kb(pid):
    """Proportional set size: each shared page divided among the processes mapping it, so
    a sum over processes counts every page once (an RSS sum counts shared pages per process)."""
    return _field_kb("/proc/%d/smaps_rollup" % pid, "Pss:")


def write_bytes(pid):
    """/proc/PID/io write_bytes: bytes this process (all its threads, and every child it has
    reaped) caused to be written to storage, counted when the page is dirtied."""
    try:
        with open("/proc/%d/io" % pid) as f:
            for line in f:
                if line.startswith("write_bytes:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def descendants(pid):
    """pid and every process below it, pid first."""
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


def tree_write_bytes(pid):
    """write_bytes over a process tree. The root's count includes the children it reaped,
    so a delta of two of these sums also counts processes that came and went between them."""
    return sum(write_bytes(p) for p in descendants(pid))


def _stat_file_for(path):
    """/sys/.../stat of the block device holding path: by the file system's device number,
    else by the mount's source in /proc/self/mountinfo (longest mount point that holds path)."""
    st = os.stat(path)
    by_number = "/sys/dev/block/%d:%d/stat" % (os.major(st.st_dev), os.minor(st.st_dev))
    if os.path.exists(by_number):
        return by_number
    path, best, source = os.path.realpath(path), "", None
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            mount_point = fields[4]
            after = fields[fields.index("-") + 1:]
            if (path == mount_point or path.startswith(mount_point.rstrip("/") + "/")) \
                    and len(mount_point) >= len(best):
                best, source = mount_point, after[1]
    if source and source.startswith("/dev/"):
        name = os.path.basename(os.path.realpath(source))
        candidate = "/sys/class/block/%s/stat" % name
        if os.path.exists(candidate):
            return candidate
    raise SystemExit("no block device found for %s (tmpfs?): write amplification needs a disk" % path)


class BlockDevice:
    """The disk under a directory; bytes written to it since boot, after a `sync`."""

    def __init__(self, path):
        self.stat_file = _stat_file_for(path)
        self.name = os.path.basename(os.path.realpath(os.path.dirname(self.stat_file)))

    def bytes_written(self):
        """Flushes dirty pages first (`sync` waits for them), then reads sectors written."""
        subprocess.run(["sync"], check=True)
        with open(self.stat_file) as f:
            return int(f.read().split()[6]) * SECTOR

    def background_rate(self, seconds):
        """Bytes/s written to this device by everything else on the machine, over an idle window."""
        before = self.bytes_written()
        start = time.time()
        time.sleep(seconds)
        return (self.bytes_written() - before) / (time.time() - start)


class MemorySampler(threading.Thread):
    """Peak RSS sum and peak PSS sum of a target's process tree while a load runs."""

    def __init__(self, target, period=0.5):
        super().__init__(daemon=True)
        self.target, self.period, self.running = target, period, True
        self.peak_rss_kb = self.peak_pss_kb = 0

    def run(self):
        while self.running:
            pids = descendants(self.target.root_pid())
            self.peak_rss_kb = max(self.peak_rss_kb, sum(rss_kb(p) for p in pids))
            self.peak_pss_kb = max(self.peak_pss_kb, sum(pss_kb(p) for p in pids))
            time.sleep(self.period)

    def stop(self):
        self.running = False
        self.join()
        return self.peak_rss_kb, self.peak_pss_kb
