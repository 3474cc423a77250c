"""End-to-end: `happy logs ...` (SPEC §3.5, §4.5)."""
import json
import re
import subprocess
import time

from daemon_fixtures import dh  # noqa: F401

LINE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z (DEBUG|INFO|WARN|ERROR) \[[^\]]+\] .*$")


def test_logs_commands(dh):
    r = dh.run("logs", "path")
    assert r.returncode == 1
    assert dh.json("logs", "list") == {"logs": []}
    info = dh.start()
    path = dh.run("logs", "path").stdout.strip()
    assert path == info["logPath"] and path.endswith(f"-pid-{info['pid']}-daemon.log")
    assert re.search(r"/logs/\d{4}-\d{2}-\d{2}-\d{2}-\d{2}-\d{2}-pid-\d+-daemon\.log$", path)
    lines = dh.run("logs", "tail", "-n", "2").stdout.splitlines()
    assert len(lines) == 2 and all(LINE.match(l) for l in lines)
    j = dh.json("logs", "list")
    assert [e["path"] for e in j["logs"]] == [path]
    e = j["logs"][0]
    assert e["sizeBytes"] > 0 and e["modifiedAt"] > 1_600_000_000_000
    for l in open(path).read().splitlines():
        assert LINE.match(l), l


def test_log_retention_and_follow_across_restart(dh):
    dh.write_profile("t", dh.profile_text.replace("healthCheckSeconds: 0.5", "healthCheckSeconds: 0.5\n  logFiles: 2"))
    dh.start()
    p = subprocess.Popen([dh.bin, "logs", "tail", "-f", "-n", "0"], env=dh.env, stdout=subprocess.PIPE, text=True)
    try:
        for _ in range(3):
            dh.run("daemon", "stop")
            time.sleep(1.05)  # a new second → a new file name
            info = dh.start()
        logs = dh.json("logs", "list")["logs"]
        assert len(logs) == 2
        assert logs[0]["path"].endswith(f"-pid-{info['pid']}-daemon.log")
        out = ""
        end = time.monotonic() + 5
        while time.monotonic() < end and f"pid {info['pid']}" not in out:
            out += p.stdout.readline()
        assert f"pid {info['pid']}" in out
    finally:
        p.kill()
        p.wait()


def test_logs_tail_json(dh):
    info = dh.start()
    j = dh.json("logs", "tail", "-n", "3")
    assert j["path"] == info["logPath"]
    assert len(j["lines"]) == 3 and all(LINE.match(l) for l in j["lines"])
    assert j["lines"] == dh.run("logs", "tail", "-n", "3").stdout.splitlines()
    assert dh.json("logs", "path") == {"path": info["logPath"]}
    # Following with --json: JSON Lines, one {"path", "line"} object per log line.
    p = subprocess.Popen([dh.bin, "logs", "tail", "-f", "-n", "2", "--json"], env=dh.env,
                         stdout=subprocess.PIPE, text=True)
    try:
        recs = [json.loads(p.stdout.readline()) for _ in range(2)]
        assert all(r["path"] == info["logPath"] and LINE.match(r["line"]) for r in recs)
    finally:
        p.kill()
        p.wait()
