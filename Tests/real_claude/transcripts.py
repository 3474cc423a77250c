"""Regenerates the transcript sections of TRANSCRIPTS.md: runs each scenario against the
real claude (offline, over Tests/fake_anthropic) and prints its stdin (IN) and stdout
(OUT) lines as Markdown, long fields trimmed, paths shown as /T.

    python3 Tests/real_claude/transcripts.py [scenario ...] > /tmp/transcripts.md

Scenarios: text allow deny error_response interrupt interrupt_stream two modes ask
api_error resume (all by default). Times are when the driver read a line (it polls every
20 ms; lines read after a sleep show the sleep's end).
"""
import json, os, sys, time, subprocess, pathlib, shutil, re, tempfile
HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from driver import Claude, blocks  # noqa: E402
from locate import claude_path, claude_env  # noqa: E402
import urllib.request  # noqa: E402

if claude_path() is None:
    sys.exit("real claude not installed (see Tests/real_claude/locate.py)")
ROOT = pathlib.Path(tempfile.mkdtemp(prefix="claude-transcripts-"))
def api(port, method, path, body=None):
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method,
                                 data=json.dumps(body).encode() if body is not None else None,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())
p = subprocess.Popen([sys.executable, str(HERE.parent / "fake_anthropic" / "server.py"), "--port", "0", "--watch-stdin"],
                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
port = int(p.stdout.readline())

def trim(v, depth=0):
    if isinstance(v, dict):
        out = {}
        for k, x in v.items():
            if k in ("usage", "modelUsage", "subagent_stats", "model_usage_since_last_result") and isinstance(x, dict):
                out[k] = "{…}"
            elif k in ("tools", "slash_commands", "skills", "agents", "plugins", "capabilities", "terminal_slash_commands") and isinstance(x, list):
                out[k] = x[:3] + (["…%d more" % (len(x) - 3)] if len(x) > 3 else [])
            else:
                out[k] = trim(x, depth + 1)
        return out
    if isinstance(v, list):
        return [trim(x, depth + 1) for x in v]
    if isinstance(v, str):
        v = v.replace(str(ROOT), "/T")
        v = re.sub(r"127\.0\.0\.1:\d+", "127.0.0.1:PORT", v)
        return v if len(v) <= 160 else v[:157] + "…"
    return v

SEEN_INIT = [False]
def short_init(m):
    return {k: m[k] for k in ("type", "subtype", "session_id", "model", "permissionMode", "uuid") if k in m} | {"…": "as above"}
def show(title, c, start_in=0, start_out=0):
    print(f"\n### {title}\n\n```")
    c.poll()
    ev = [(t, 0, "IN  " + json.dumps(trim(json.loads(line)) if line.startswith("{") else line, separators=(",", ":"), ensure_ascii=False)) for t, line in zip(c.sent_times, c.sent)]
    for t, m in zip(c.times, c.lines):
        if isinstance(m, dict) and m.get("subtype") == "init" and SEEN_INIT[0]:
            m = short_init(m)
        elif isinstance(m, dict) and m.get("subtype") == "init":
            SEEN_INIT[0] = True
        ev.append((t, 1, "OUT " + json.dumps(trim(m), separators=(",", ":"), ensure_ascii=False)))
    ev.sort(key=lambda e: (e[0], e[1]))
    t0 = c.started
    for t, _, s in ev:
        print(f"{t - t0:5.2f} {s}")
    print("```")

n = 0
def new(args=(), home=None, extra=None, cwd=None):
    global n; n += 1
    d = ROOT / f"s{n}"; (d / "work").mkdir(parents=True, exist_ok=True)
    env = claude_env(f"http://127.0.0.1:{port}", home or (ROOT / "home"), extra)
    return Claude.start(claude_path(), list(args), env=env, cwd=cwd or (ROOT / "work"), tmp=d)
(ROOT / "work").mkdir(parents=True, exist_ok=True)

which = sys.argv[1:]
def want(k): return not which or k in which

if want("text"):
    c = new(); c.quiet_for(1.0)
    c.send_user("hello"); c.wait_result(); c.send_user("again"); c.wait_result()
    show("Two plain prompts (nothing before the first; init per prompt; num_turns per prompt; cost cumulative)", c)
    c.stop()
if want("allow"):
    c = new()
    api(port, "POST", "/__script", [{"thinking": "let me think", "text": "I'll create it.", "tool_use": {"name": "Bash", "input": {"command": "touch made.txt", "description": "Create file"}}}])
    c.send_user("make a file"); r = c.wait_can_use_tool(); c.allow(r); c.wait_result()
    show("Bash tool use, allowed (thinking + text + tool_use: one assistant line per block, one message.id)", c); c.stop()
if want("deny"):
    c = new()
    api(port, "POST", "/__script", [{"tool_use": {"name": "Bash", "input": {"command": "touch denied.txt"}}}])
    c.send_user("make another"); r = c.wait_can_use_tool(); c.deny(r, "no way"); c.wait_result()
    show("Bash tool use, denied", c); c.stop()
if want("error_response"):
    c = new()
    api(port, "POST", "/__script", [{"tool_use": {"name": "Bash", "input": {"command": "touch e.txt"}}}])
    c.send_user("error it"); r = c.wait_can_use_tool()
    c.send({"type": "control_response", "response": {"subtype": "error", "request_id": r["request_id"], "error": "daemon says no"}}); c.wait_result()
    show("can_use_tool answered with a control_response error", c); c.stop()
if want("interrupt"):
    c = new()
    api(port, "POST", "/__script", [{"tool_use": {"name": "Bash", "input": {"command": "touch intr.txt"}}}])
    c.send_user("make a file"); r = c.wait_can_use_tool(); c.control({"subtype": "interrupt"}, "req_int_1"); c.wait_result(); time.sleep(0.3)
    k = len(c.sent); o = len(c.lines)
    c.allow(r); time.sleep(0.5)
    c.control({"subtype": "interrupt"}, "req_int_2"); time.sleep(0.5)
    show("Interrupt with a permission pending (then: a late allow for the canceled request — no output; an interrupt while idle)", c); c.stop()
if want("interrupt_stream"):
    c = new()
    api(port, "POST", "/__script", [{"text": "slow answer", "delay": 5}])
    c.send_user("slow"); c.wait_for(lambda m: m.get("subtype") == "init"); time.sleep(0.3)
    c.control({"subtype": "interrupt"}, "req_int_3"); c.wait_result()
    show("Interrupt during an API call (no permission pending)", c); c.stop()
if want("two"):
    c = new()
    api(port, "POST", "/__script", [{"tool_uses": [{"name": "Bash", "input": {"command": "touch a1.txt"}}, {"name": "Bash", "input": {"command": "touch a2.txt"}}]}])
    c.send_user("two tools"); r1 = c.wait_can_use_tool(); time.sleep(0.3); c.allow(r1); r2 = c.wait_can_use_tool(); c.deny(r2); c.wait_result()
    show("Two tool uses in one answer (asked one at a time)", c); c.stop()
if want("modes"):
    c = new()
    c.control({"subtype": "set_permission_mode", "mode": "acceptEdits"}, "req_mode_1"); time.sleep(0.5)
    api(port, "POST", "/__script", [{"tool_use": {"name": "Write", "input": {"file_path": str(ROOT / "work" / "w.txt"), "content": "hello\n"}}}])
    c.send_user("write it"); c.wait_result()
    c.control({"subtype": "set_permission_mode", "mode": "bogus"}, "req_mode_2")
    c.control({"subtype": "set_permission_mode", "mode": "bypassPermissions"}, "req_mode_3")
    c.control({"subtype": "frobnicate"}, "req_unknown")
    c.control({"subtype": "set_model", "model": "claude-sonnet-4-5"}, "req_model")
    time.sleep(1)
    show("set_permission_mode before the first prompt (answered at once), Write auto-allowed in acceptEdits, errors, unknown subtype, set_model", c); c.stop()
if want("ask"):
    c = new()
    q = {"questions": [{"question": "Which DB?", "header": "DB", "multiSelect": False, "options": [{"label": "Postgres", "description": "pg"}, {"label": "SQLite", "description": "lite"}]}]}
    api(port, "POST", "/__script", [{"tool_use": {"name": "AskUserQuestion", "input": q}}])
    c.send_user("ask me"); r = c.wait_can_use_tool(); c.allow(r, dict(q, answers={"Which DB?": "Postgres"})); c.wait_result()
    show("AskUserQuestion", c); c.stop()
if want("api_error"):
    c = new()
    api(port, "POST", "/__script", [{"error": 529}])
    c.send_user("fail"); c.wait_result()
    show("API error 529 (CLAUDE_CODE_MAX_RETRIES=0)", c); c.stop()
if want("resume"):
    c = new(); c.send_user("remember banana"); sid = c.wait_result()["session_id"]; c.stop()
    c = new(["--resume", sid]); c.quiet_for(1.0); c.send_user("what word?"); c.wait_result()
    show(f"--resume {{first session's id}} (same HOME and cwd)", c); c.stop()
    c = new(["--resume", "00000000-0000-4000-8000-000000000000"]); c.quiet_for(1.0); c.proc.wait(5)
    show(f"--resume of an unknown id (exit {c.proc.returncode}; stderr: {c.stderr().strip()})", c); c.stop()
p.kill()
p.wait()
shutil.rmtree(ROOT, ignore_errors=True)
