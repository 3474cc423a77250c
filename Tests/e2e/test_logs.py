"""End-to-end: `happy logs ...` (SPEC §3.5, §4.5)."""
import json
import os
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


# ---------------------------------------------------------------- logs audit (SPEC §3.5)

def audit_entry(i: int, **kw) -> dict:
    e = {"time": 1_724_520_000_000 + i * 1000, "scope": "machine", "method": f"m{i}", "summary": f"summary {i}",
         "result": "ok", "durationMs": i}
    e.update(kw)
    return e


def write_audit(happy, name: str, lines: list) -> None:
    logs = happy.home / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    with open(logs / name, "a") as f:
        for l in lines:
            f.write((l if isinstance(l, str) else json.dumps(l)) + "\n")


def local_time(ms: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ms // 1000))


def test_logs_audit_without_a_file(happy):
    r = happy.run("logs", "audit")
    assert r.returncode == 0 and r.stdout == ""
    assert "no audit log" in r.stderr and "rpc-audit.jsonl" in r.stderr
    r = happy.run("logs", "audit", "--json")
    assert r.returncode == 0 and json.loads(r.stdout) == {"entries": []} and r.stderr == ""


def test_logs_audit_lines_text_and_json(happy):
    entries = [audit_entry(i) for i in range(60)]
    entries[-1] = audit_entry(59, scope="session", sessionId="sess-1", method="bash", summary="ls -la",
                              result="refused", durationMs=12)
    write_audit(happy, "rpc-audit.jsonl", entries[:58] + ["not json {"] + entries[58:])
    r = happy.run("logs", "audit")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert len(lines) == 50  # the default
    assert lines[-1] == f"{local_time(entries[-1]['time'])}  session sess-1  bash  ls -la  → refused (12 ms)"
    assert lines[-2] == f"{local_time(entries[58]['time'])}  machine  m58  summary 58  → ok (58 ms)"
    assert lines[-3] == "not json {"  # shown as is
    assert happy.run("logs", "audit", "-n", "2").stdout.splitlines() == lines[-2:]
    r = happy.run("logs", "audit", "-n3", "--json")
    assert r.returncode == 0
    assert json.loads(r.stdout) == {"entries": entries[58:]}
    assert "skipped 1 line" in r.stderr
    assert happy.json("logs", "audit", "-n", "0") == {"entries": []}


def test_logs_audit_reaches_into_the_rotated_file(happy):
    write_audit(happy, "rpc-audit.1.jsonl", [audit_entry(i) for i in range(5)])
    write_audit(happy, "rpc-audit.jsonl", [audit_entry(i) for i in range(5, 7)])
    assert happy.json("logs", "audit", "-n", "4") == {"entries": [audit_entry(i) for i in range(3, 7)]}
    # Only the rotated file (between the rename and the next action): still read.
    (happy.home / "logs" / "rpc-audit.jsonl").unlink()
    assert [e["method"] for e in happy.json("logs", "audit", "-n", "2")["entries"]] == ["m3", "m4"]


def test_logs_audit_follow_across_rotation(happy):
    logs = happy.home / "logs"
    write_audit(happy, "rpc-audit.jsonl", [audit_entry(0), audit_entry(1)])
    p = subprocess.Popen([happy.bin, "logs", "audit", "-f", "-n", "1", "--json"], env=happy.env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert json.loads(p.stdout.readline()) == audit_entry(1)
        write_audit(happy, "rpc-audit.jsonl", [audit_entry(2)])
        assert json.loads(p.stdout.readline()) == audit_entry(2)
        # The daemon rotates: the file is renamed (a last line may still land in it) and a
        # new one starts. Nothing is lost or repeated, in order.
        write_audit(happy, "rpc-audit.jsonl", [audit_entry(3)])
        os.rename(logs / "rpc-audit.jsonl", logs / "rpc-audit.1.jsonl")
        write_audit(happy, "rpc-audit.1.jsonl", [audit_entry(4), "garbage"])
        write_audit(happy, "rpc-audit.jsonl", [audit_entry(5)])
        got = [json.loads(p.stdout.readline()) for _ in range(3)]
        assert got == [audit_entry(3), audit_entry(4), audit_entry(5)]
    finally:
        p.kill()
        _, err = p.communicate(timeout=10)
    assert "not a JSON object" in err


def test_logs_audit_follow_text_waits_for_the_file(happy):
    p = subprocess.Popen([happy.bin, "logs", "audit", "-f"], env=happy.env, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    try:
        assert "waiting for" in p.stderr.readline()
        write_audit(happy, "rpc-audit.jsonl", [audit_entry(7, result="error")])
        assert p.stdout.readline() == f"{local_time(audit_entry(7)['time'])}  machine  m7  summary 7  → error (7 ms)\n"
    finally:
        p.kill()
        p.wait()


def threads(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/task"))


def test_synchronous_commands_run_on_one_thread(happy):
    # Commands without async work never start the concurrency runtime (and its threads):
    # while these follows wait, the process has exactly one thread.
    sess = happy.home / "sessions" / "s1"
    sess.mkdir(parents=True)
    (sess / "stdout.jsonl").write_text('{"type":"system","subtype":"init"}\n')
    for args in (["logs", "audit", "-f"], ["logs", "tail", "-f"], ["session", "logs", "s1", "-f"]):
        p = subprocess.Popen([happy.bin, *args], env=happy.env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
        try:
            if args[0] == "session":
                assert p.stdout.readline().startswith("[system]")
            else:
                assert "waiting for" in p.stderr.readline()
            time.sleep(0.3)
            assert threads(p.pid) == 1, args
        finally:
            p.kill()
            p.wait()
