"""Soak test of the real daemon against the Happy Server emulator (issue 8).

Heartbeat 1 s; a session spawned through the control API and stopped again every 5 s;
the emulator restarted every 2 minutes. Samples the daemon's RSS and descriptor count
at the start (after a 15 s warm-up), every 30 s, in the middle and at the end, and
fails (exit 1) when either grows beyond its bound, the daemon dies or changes pid, or
it is not `running` again after the last restart.

Environment: SOAK_SECONDS (default 600), SOAK_RSS_MIB (8), SOAK_FDS (10),
HAPPY_BIN (default .build/debug/happy)."""
import json
import os
import pathlib
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "Tests" / "e2e"))

from sync_fixtures import Account, SyncEmulator, SyncHappy, pid_alive, wait_until  # noqa: E402
from test_stress import api  # noqa: E402

DURATION = float(os.environ.get("SOAK_SECONDS", "600"))
RSS_BOUND_KIB = float(os.environ.get("SOAK_RSS_MIB", "8")) * 1024
FD_BOUND = int(os.environ.get("SOAK_FDS", "10"))
SESSION_EVERY = 5.0
RESTART_EVERY = 120.0
SAMPLE_EVERY = 30.0
WARMUP = 15.0


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return -1


def fds(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def main():
    tmp = pathlib.Path(tempfile.mkdtemp(prefix="happy-soak-"))
    emu = SyncEmulator(tmp)
    acc = Account(emu, "legacy")
    emu.stop()  # saves the account in the state file
    emu.start()
    h = SyncHappy(tmp, emu, acc, heartbeat=1)
    h.write_profile("t", h.profile_text.replace("healthCheckSeconds: 0.5", "healthCheckSeconds: 0.5\n  heartbeatSeconds: 1"))
    failures = []
    samples = []
    counts = {"spawned": 0, "stopped": 0, "spawn_errors": 0, "restarts": 0}
    try:
        info = h.start()
        pid = info["pid"]
        assert h.wait_running(15), "daemon never running"
        st = h.state()
        port, token = st["httpPort"], st["controlToken"]
        work = tmp / "work"
        work.mkdir()
        t0 = time.monotonic()
        next_session = t0
        next_restart = t0 + RESTART_EVERY
        next_sample = t0 + WARMUP
        middle_done = False
        current = None

        def sample(label):
            s = {"t": round(time.monotonic() - t0, 1), "label": label, "rss_kib": rss_kib(pid), "fds": fds(pid),
                 "sessions": len(api(port, token, "GET", "/sessions")[1]["sessions"])}
            samples.append(s)
            print(json.dumps(s), flush=True)

        while True:
            now = time.monotonic()
            el = now - t0
            if el >= DURATION:
                break
            if not pid_alive(pid):
                failures.append(f"daemon died at {el:.0f} s")
                break
            if now >= next_session:
                next_session += SESSION_EVERY
                if current:
                    c, _ = api(port, token, "DELETE", f"/sessions/{current}")
                    counts["stopped"] += c == 200
                    current = None
                c, b = api(port, token, "POST", "/sessions", {"directory": str(work), "prompt": "soak"})
                if c == 201:
                    counts["spawned"] += 1
                    current = b["session"]["id"]
                    h.track(b["session"]["pid"])
                else:
                    counts["spawn_errors"] += 1
            if now >= next_restart:
                next_restart += RESTART_EVERY
                emu.stop()
                time.sleep(0.5)
                emu.start()
                counts["restarts"] += 1
            if now >= next_sample:
                label = "start" if not samples else "sample"
                next_sample += SAMPLE_EVERY
                sample(label)
            if not middle_done and el >= DURATION / 2:
                middle_done = True
                sample("middle")
            time.sleep(0.1)
        if current:
            c, _ = api(port, token, "DELETE", f"/sessions/{current}")
            counts["stopped"] += c == 200
        if pid_alive(pid):
            time.sleep(2)
            sample("end")
            ok = wait_until(lambda: h.server_status() == "connected"
                            and (h.daemon_state() or {}).get("status") == "running", 15)
            if not ok:
                failures.append(f"not running at the end: {h.status()}")
            if h.state()["pid"] != pid:
                failures.append("daemon pid changed")
        base = samples[0] if samples else None
        if base:
            worst_rss = max(s["rss_kib"] for s in samples) - base["rss_kib"]
            end = samples[-1]
            if end["rss_kib"] - base["rss_kib"] > RSS_BOUND_KIB:
                failures.append(f"RSS grew {end['rss_kib'] - base['rss_kib']} KiB (bound {RSS_BOUND_KIB:.0f})")
            if end["fds"] - base["fds"] > FD_BOUND or max(s["fds"] for s in samples) - base["fds"] > FD_BOUND:
                failures.append(f"fds grew from {base['fds']} to {max(s['fds'] for s in samples)} (bound +{FD_BOUND})")
            print(json.dumps({"summary": {"seconds": DURATION, "counts": counts,
                                          "rss_start_kib": base["rss_kib"], "rss_end_kib": end["rss_kib"],
                                          "rss_max_growth_kib": worst_rss, "fds_start": base["fds"],
                                          "fds_end": end["fds"], "fds_max": max(s["fds"] for s in samples)}}))
        if counts["spawn_errors"]:
            failures.append(f"{counts['spawn_errors']} spawns failed")
    finally:
        h.cleanup()
        emu.stop()
    if failures:
        print("SOAK FAILED: " + "; ".join(failures))
        return 1
    print("SOAK PASSED")
    return 0


if __name__ == "__main__":
    sys.exit(main())
