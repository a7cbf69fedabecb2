"""Memory over a long run at full load: does the proxy's RSS level off, or keep growing?

    .venv/bin/python bench/soak.py [--minutes 10] [--workers 1] [--connections 50] [--sessions 5000]
                                   [--interval 5] [--warmup 60]

Same setup as bench/run.py (its Redis, nginx upstream, proxy config and session maker are reused):
the proxy in the data path, wrk at full load for the whole duration, each request carrying the
cookie of the next of ALL the created sessions in turn (a wrk Lua script), so every session is
loaded, decrypted and cached over and over. With ``--workers N`` the proxy runs N workers and each
one is sampled (and the supervising parent too).

Every ``--interval`` seconds: elapsed seconds, RSS (VmRSS) and cumulative CPU seconds of each proxy
process, written as they come to .artifacts/bench/soak.csv. At the end: wrk's summary, a table of
RSS per process (at the start, at the end of the warm-up, at the end, the max, and the least-squares
slope in MB/minute after the warm-up), and .artifacts/bench/soak.png (copied to bench/soak.png).
Ctrl-C stops the run early and still reports what was measured; every process started is stopped.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import math
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

from run import (
    ROOT,
    ROTATE_LUA,
    UPSTREAM_CONF,
    cpu_seconds,
    free_port,
    make_session_cookies,
    proxy_config,
    redis_server,
    wait_port,
)

OUT = ROOT / ".artifacts" / "bench"
Sample = dict[str, float]  # "t" (elapsed s), "rss:<process>" (MB), "cpu:<process>" (s); NaN once gone


def rss_mb(pid: int) -> float:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return math.nan
    m = re.search(r"^VmRSS:\s+(\d+) kB", status, re.M)
    return int(m.group(1)) / 1024 if m else math.nan


def cpu_or_nan(pid: int) -> float:
    try:
        return cpu_seconds(pid)
    except (FileNotFoundError, ProcessLookupError):
        return math.nan


def worker_pids(parent: int) -> list[int]:
    """The proxy's worker processes: children of ``parent`` (by the ppid in /proc/*/stat) started by
    multiprocessing's spawn_main, which leaves out its resource tracker."""
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            if ppid == parent and b"spawn_main" in (stat.parent / "cmdline").read_bytes():
                pids.append(int(stat.parent.name))
        except (FileNotFoundError, ProcessLookupError, IndexError, ValueError):
            continue  # gone meanwhile
    return sorted(pids)


def proxy_processes(proxy: subprocess.Popen[bytes], workers: int, timeout: float = 30.0) -> dict[str, int]:
    if workers == 1:
        return {"proxy": proxy.pid}
    deadline = time.monotonic() + timeout
    while len(pids := worker_pids(proxy.pid)) < workers:
        if proxy.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"soak: expected {workers} proxy workers, found {len(pids)}")
        time.sleep(0.1)
    return {**{f"worker-{i}": pid for i, pid in enumerate(pids)}, "supervisor": proxy.pid}


def parse_wrk(out: str) -> dict[str, float]:
    def num(pattern: str) -> float:
        m = re.search(pattern, out)
        return float(m.group(1)) if m else 0.0

    def pct(p: str) -> float:
        m = re.search(rf"\s{p}%\s+([\d.]+)(us|ms|s)", out)
        return float(m.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)] if m else math.nan

    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return {"rps": num(r"Requests/sec:\s+([\d.]+)"), "requests": num(r"(\d+) requests in"),
            "p50_ms": pct("50"), "p99_ms": pct("99"), "non2xx": num(r"Non-2xx or 3xx responses: (\d+)"),
            "socket_errors": sum(int(g) for g in sock.groups()) if sock else 0}  # fmt: skip


def soak(
    procs: dict[str, int], wrk_cmd: list[str], interval: float, csv_path: Path, watch: subprocess.Popen[bytes]
) -> tuple[list[Sample], str, bool]:
    """Run wrk to its end, sampling every ``interval`` s; (samples, wrk's output, interrupted)."""
    fields = ["t"] + [f"{k}:{name}" for name in procs for k in ("rss", "cpu")]
    samples: list[Sample] = []
    interrupted = False
    with csv_path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["elapsed_s"] + [f"{k}_{name}" for name in procs for k in ("rss_mb", "cpu_s")])
        t0 = time.monotonic()
        load = subprocess.Popen(wrk_cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            for k in range(1, sys.maxsize):
                row = {"t": time.monotonic() - t0}
                for name, pid in procs.items():
                    row[f"rss:{name}"], row[f"cpu:{name}"] = rss_mb(pid), cpu_or_nan(pid)
                samples.append(row)
                writer.writerow([f"{row[c]:.3f}" for c in fields])
                f.flush()
                if load.poll() is not None:
                    break
                if watch.poll() is not None:
                    raise RuntimeError(f"soak: the proxy exited (status {watch.returncode}) during the run")
                try:
                    load.wait(max(0.0, t0 + k * interval - time.monotonic()))
                except subprocess.TimeoutExpired:
                    pass
        except KeyboardInterrupt:
            interrupted = True
            print("\nsoak: interrupted, stopping wrk and reporting what was measured", file=sys.stderr)
            if load.poll() is None:
                load.send_signal(signal.SIGINT)  # SIGINT: wrk stops and prints its summary so far
        finally:
            if load.poll() is None and not interrupted:  # an error: nothing to report
                load.kill()
            out = load.communicate(timeout=15)[0]
    if load.returncode not in (0, None) and not interrupted:
        raise RuntimeError(f"soak: wrk failed (status {load.returncode}):\n{out}")
    return samples, out, interrupted


def rss_table(procs: dict[str, int], samples: list[Sample], warmup: float) -> dict[str, dict[str, float]]:
    after = [s for s in samples if s["t"] >= warmup]
    table = {}
    for name in procs:
        rss = [s[f"rss:{name}"] for s in samples if not math.isnan(s[f"rss:{name}"])]
        pts = [(s["t"] / 60, s[f"rss:{name}"]) for s in after if not math.isnan(s[f"rss:{name}"])]
        slope = statistics.linear_regression(*zip(*pts, strict=True)).slope if len(pts) >= 2 else math.nan
        cpu = [s[f"cpu:{name}"] for s in samples if not math.isnan(s[f"cpu:{name}"])]
        table[name] = {
            "start": rss[0] if rss else math.nan,
            "warm": pts[0][1] if pts else math.nan,
            "end": rss[-1] if rss else math.nan,
            "max": max(rss, default=math.nan),
            "slope": slope,
            "cpu": cpu[-1] - cpu[0] if cpu else math.nan,
        }
    return table


def plot(
    samples: list[Sample], table: dict[str, dict[str, float]], warmup: float, title: str, png: Path
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(11, 5.5), layout="constrained")
    minutes = [s["t"] / 60 for s in samples]
    ax.axvspan(0, min(warmup / 60, max(minutes)), color="0.85", alpha=0.6, label=f"warm-up ({warmup:g} s)")
    for name, row in table.items():
        slope = "n/a" if math.isnan(row["slope"]) else f"{row['slope']:+.2f} MB/min after warm-up"
        ax.plot(minutes, [s[f"rss:{name}"] for s in samples], lw=1.8, marker=".", ms=4,
                label=f"{name}: {row['end']:.1f} MB at the end, {slope}")  # fmt: skip
    lo = min(r["start"] for r in table.values() if not math.isnan(r["start"]))
    hi = max(r["max"] for r in table.values() if not math.isnan(r["max"]))
    pad = max(2.0, (20 - (hi - lo)) / 2)  # at least 20 MB shown, so noise doesn't look like a trend
    ax.set_ylim(max(0, lo - pad), hi + pad)
    ax.set_xlim(0, max(minutes))
    ax.set_xlabel("minutes at full load", fontsize=11)
    ax.set_ylabel("RSS (MB)", fontsize=11)
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize=10)
    ax.set_title(title, fontsize=11)
    fig.savefig(png, dpi=120)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=10)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--connections", type=int, default=50)
    ap.add_argument("--sessions", type=int, default=5000)
    ap.add_argument("--interval", type=float, default=5, help="seconds between samples")
    ap.add_argument("--warmup", type=float, default=60, help="seconds excluded from the slope")
    args = ap.parse_args()
    if not 1 <= args.workers <= 64 or args.minutes <= 0 or args.interval <= 0:
        ap.error("--workers must be from 1 to 64, --minutes and --interval above 0")
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    for tool in ("wrk", nginx, "redis-server"):
        if not shutil.which(tool):
            sys.exit(f"soak: {tool} is not installed")
    seconds = max(1, round(args.minutes * 60))
    work = Path(tempfile.mkdtemp(prefix="auth-proxy-soak-"))
    OUT.mkdir(parents=True, exist_ok=True)
    started: list[subprocess.Popen[bytes]] = []
    try:
        with redis_server() as redis:
            up_port, proxy_port = free_port(), free_port()
            (work / "up.conf").write_text(UPSTREAM_CONF.format(dir=work, port=up_port))
            started.append(
                subprocess.Popen([nginx, "-c", str(work / "up.conf"), "-p", str(work), "-g", "daemon off;"])
            )
            (work / "proxy.yaml").write_text(
                proxy_config(proxy_port, up_port, redis.url, f"http://127.0.0.1:{free_port()}/realms/x")
            )
            cmd = [sys.executable, "-m", "proxy", "--config", str(work / "proxy.yaml"),
                   "--log-level", "ERROR", "--workers", str(args.workers)]  # fmt: skip
            with (work / "proxy.log").open("wb") as log:
                proxy = subprocess.Popen(cmd, cwd=ROOT, stderr=log)
            started.append(proxy)
            for port in (up_port, proxy_port):
                wait_port(port, 30)
            procs = proxy_processes(proxy, args.workers)
            print(f"soak: proxy processes {procs}; creating {args.sessions} sessions", file=sys.stderr)
            cookies = asyncio.run(make_session_cookies(redis.url, args.sessions))
            (work / "cookies.txt").write_text("".join(f"_auth_proxy={c}\n" for c in cookies))
            (work / "rotate.lua").write_text(ROTATE_LUA)
            wrk_cmd = ["wrk", "-t2", f"-c{args.connections}", f"-d{seconds}s", "--latency",
                       "-s", str(work / "rotate.lua"), f"http://127.0.0.1:{proxy_port}/",
                       "--", str(work / "cookies.txt")]  # fmt: skip
            print(f"soak: {' '.join(wrk_cmd)}  (sampling every {args.interval:g} s)", file=sys.stderr)
            samples, out, interrupted = soak(procs, wrk_cmd, args.interval, OUT / "soak.csv", proxy)
    except BaseException:
        log_text = (work / "proxy.log").read_text(errors="replace") if (work / "proxy.log").exists() else ""
        if log_text.strip():
            print(f"soak: the proxy's log:\n{log_text[-3000:]}", file=sys.stderr)
        raise
    finally:
        for p in reversed(started):
            if p.poll() is None:
                p.terminate()
        for p in started:
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)
        shutil.rmtree(work, ignore_errors=True)

    report(args, procs, samples, out, interrupted)
    if interrupted:
        sys.exit(130)


def table_row(cells: list[str], widths: list[int]) -> str:
    """A Markdown table row: the first cell left-aligned, the others right-aligned."""
    padded = [cells[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(cells[1:], widths[1:], strict=True)]
    return "| " + " | ".join(padded) + " |"


def report(
    args: argparse.Namespace, procs: dict[str, int], samples: list[Sample], out: str, interrupted: bool
) -> None:
    r = parse_wrk(out)
    table = rss_table(procs, samples, args.warmup)
    minutes = samples[-1]["t"] / 60
    cpu = sum(row["cpu"] for row in table.values() if not math.isnan(row["cpu"]))
    cpu_10k = cpu / r["requests"] * 10_000 if r["requests"] else math.nan
    setup = (
        f"{args.workers} worker(s), {args.sessions} sessions rotated, "
        f"wrk -t2 -c{args.connections}, {os.cpu_count()} cores shared"
    )
    load = f"{r['rps']:,.0f} req/s over {minutes:.1f} min{' (interrupted)' if interrupted else ''}"
    latency = f"p50 {r['p50_ms']:.2f} ms, p99 {r['p99_ms']:.2f} ms"
    errors = f"{r['non2xx']:.0f} non-2xx/3xx, {r['socket_errors']:.0f} socket errors"
    print(f"\nsoak: {setup}")
    print(f"wrk: {load}, {r['requests']:,.0f} requests, {latency}, {errors}")
    print(f"proxy CPU: {cpu_10k:.2f} s per 10k requests\n")
    head = ["process", "RSS start MB", f"at {args.warmup:g} s", "end", "max", "MB/min after warm-up", "CPU s"]
    widths = [max(12, *(len(n) for n in table)), 12, 9, 7, 7, 20, 7]
    print(table_row(head, widths))
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for name, row in table.items():
        cells = [f"{row[k]:.1f}" for k in ("start", "warm", "end", "max")]
        print(table_row([name, *cells, f"{row['slope']:+.3f}", f"{row['cpu']:.1f}"], widths))
    (OUT / "soak-wrk.txt").write_text(out)
    title = f"auth-proxy RSS at full load, {date.today().isoformat()}: {setup}\n{load}, {latency}, {errors}"
    plot(samples, table, args.warmup, title, OUT / "soak.png")
    shutil.copyfile(OUT / "soak.png", ROOT / "bench" / "soak.png")
    print(f"\nwrote {OUT / 'soak.csv'}, {OUT / 'soak-wrk.txt'}, {OUT / 'soak.png'} (and bench/soak.png)")


if __name__ == "__main__":
    main()
