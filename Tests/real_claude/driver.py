"""Drive a `claude` process (the real one or Tests/fake_claude/claude) the way the happy
daemon does: stdin a FIFO opened O_RDWR in the child (or a plain pipe), stdout and
stderr to files, stream-json in and out, `--permission-prompt-tool stdio`.

    c = Claude.start(bin, ["--permission-mode", "default"], env=env, cwd=work, tmp=tmp)
    c.send_user("hello")
    init = c.wait_for(lambda m: m.get("type") == "system" and m.get("subtype") == "init")
    res = c.wait_for(lambda m: m.get("type") == "result")
    c.stop()

Every wait is bounded; `stop()` kills the process group by pid and reaps it.
"""
from __future__ import annotations

import json
import os
import pathlib
import signal
import subprocess
import time
import uuid

FIXED_FLAGS = ["--print", "--output-format", "stream-json", "--verbose",
               "--input-format", "stream-json", "--permission-prompt-tool", "stdio"]


class WaitTimeout(AssertionError):
    pass


class Claude:
    def __init__(self, proc: subprocess.Popen, stdin_fd: int, out_path: pathlib.Path,
                 err_path: pathlib.Path, fifo: pathlib.Path | None):
        self.proc = proc
        self.pid = proc.pid
        self.stdin_fd = stdin_fd
        self.out_path = out_path
        self.err_path = err_path
        self.fifo = fifo
        self.started = time.monotonic()
        self._buf = b""
        self._pos = 0
        self.lines: list[dict | str] = []   # parsed stdout lines (str when not JSON)
        self.raw: list[str] = []            # the same lines as written
        self.times: list[float] = []        # monotonic time each line was seen
        self.sent: list[str] = []
        self.sent_times: list[float] = []   # monotonic time each sent line was written
        self.cursor = 0                     # wait_for searches from here

    @classmethod
    def start(cls, binary: str, args: list[str] | None = None, *, env: dict, cwd: str | os.PathLike,
              tmp: str | os.PathLike, stdin: str = "fifo", flags: list[str] | None = None) -> "Claude":
        """`flags`: the fixed flags (default FIXED_FLAGS, the daemon's), then `args`."""
        tmp = pathlib.Path(tmp)
        tmp.mkdir(parents=True, exist_ok=True)
        tag = uuid.uuid4().hex[:8]
        out_path = tmp / f"claude-{tag}.stdout.jsonl"
        err_path = tmp / f"claude-{tag}.stderr.log"
        out = open(out_path, "ab")
        err = open(err_path, "ab")
        fifo = None
        if stdin == "fifo":
            fifo = tmp / f"claude-{tag}.stdin.fifo"
            os.mkfifo(fifo, 0o600)
            child_in = os.open(fifo, os.O_RDWR)      # like the daemon: never EOF
            parent_in = os.open(fifo, os.O_WRONLY)
        else:
            child_in, parent_in = os.pipe()
        try:
            proc = subprocess.Popen([binary, *(FIXED_FLAGS if flags is None else flags), *(args or [])], stdin=child_in, stdout=out,
                                    stderr=err, cwd=str(cwd), env=env, start_new_session=True)
        finally:
            os.close(child_in)
            out.close()
            err.close()
        return cls(proc, parent_in, out_path, err_path, fifo)

    # --- input ---------------------------------------------------------------------------
    def send(self, obj: dict | str) -> None:
        line = obj if isinstance(obj, str) else json.dumps(obj, separators=(",", ":"))
        data = (line + "\n").encode()
        self.sent.append(line)
        self.sent_times.append(time.monotonic())
        while data:
            n = os.write(self.stdin_fd, data)
            data = data[n:]

    def send_user(self, text: str) -> None:
        self.send({"type": "user", "message": {"role": "user", "content": text},
                   "parent_tool_use_id": None})

    def control(self, request: dict, request_id: str | None = None) -> str:
        rid = request_id or "req_test_" + uuid.uuid4().hex[:12]
        self.send({"type": "control_request", "request_id": rid, "request": request})
        return rid

    def answer(self, request_id: str, response: dict) -> None:
        self.send({"type": "control_response",
                   "response": {"subtype": "success", "request_id": request_id, "response": response}})

    def allow(self, req: dict, updated_input: dict | None = None) -> None:
        r = req["request"]
        self.answer(req["request_id"], {"behavior": "allow",
                                        "updatedInput": updated_input if updated_input is not None
                                        else r.get("input", {})})

    def deny(self, req: dict, message: str = "The user doesn't want to proceed with this tool use.") -> None:
        self.answer(req["request_id"], {"behavior": "deny", "message": message})

    # --- output --------------------------------------------------------------------------
    def poll(self) -> None:
        with open(self.out_path, "rb") as f:
            f.seek(self._pos)
            chunk = f.read()
        self._pos += len(chunk)
        self._buf += chunk
        now = time.monotonic()
        while b"\n" in self._buf:
            raw, self._buf = self._buf.split(b"\n", 1)
            text = raw.decode("utf-8", "replace")
            if not text.strip():
                continue
            self.raw.append(text)
            try:
                self.lines.append(json.loads(text))
            except ValueError:
                self.lines.append(text)
            self.times.append(now)

    def wait_for(self, pred, timeout: float = 30.0, what: str = "") -> dict:
        """The first line from `cursor` on that matches; moves the cursor past it."""
        end = time.monotonic() + timeout
        while True:
            self.poll()
            for i in range(self.cursor, len(self.lines)):
                m = self.lines[i]
                if isinstance(m, dict) and pred(m):
                    self.cursor = i + 1
                    return m
            if time.monotonic() >= end:
                raise WaitTimeout(f"no {what or 'matching line'} within {timeout}s; pid {self.pid} "
                                  f"{'exited ' + str(self.proc.poll()) if self.proc.poll() is not None else 'alive'};"
                                  f" lines since cursor: {self.tail(self.cursor)}; stderr: {self.stderr()[-2000:]}")
            if self.proc.poll() is not None:
                end = min(end, time.monotonic() + 0.3)  # read what it wrote last, then give up
            time.sleep(0.02)

    def wait_type(self, typ: str, subtype: str | None = None, timeout: float = 30.0) -> dict:
        return self.wait_for(lambda m: m.get("type") == typ and (subtype is None or m.get("subtype") == subtype
                                                                or (m.get("request") or {}).get("subtype") == subtype
                                                                or (m.get("response") or {}).get("subtype") == subtype),
                             timeout, f"{typ}/{subtype}")

    def wait_result(self, timeout: float = 30.0) -> dict:
        return self.wait_type("result", timeout=timeout)

    def wait_can_use_tool(self, timeout: float = 30.0) -> dict:
        return self.wait_for(lambda m: m.get("type") == "control_request"
                             and m.get("request", {}).get("subtype") == "can_use_tool", timeout, "can_use_tool")

    def wait_control_response(self, request_id: str, timeout: float = 30.0) -> dict:
        return self.wait_for(lambda m: m.get("type") == "control_response"
                             and m.get("response", {}).get("request_id") == request_id, timeout,
                             f"control_response {request_id}")

    def since(self, index: int = 0) -> list:
        self.poll()
        return self.lines[index:]

    def quiet_for(self, seconds: float) -> list:
        """Waits `seconds` and returns the lines that arrived meanwhile."""
        self.poll()
        n = len(self.lines)
        time.sleep(seconds)
        self.poll()
        return self.lines[n:]

    def tail(self, index: int, limit: int = 12) -> str:
        return json.dumps([(m if isinstance(m, str) else {k: m.get(k) for k in ("type", "subtype", "request", "response", "message")})
                           for m in self.lines[index:][-limit:]])[:4000]

    def stderr(self) -> str:
        try:
            return self.err_path.read_text(errors="replace")
        except OSError:
            return ""

    # --- end -----------------------------------------------------------------------------
    def stop(self, grace: float = 3.0) -> int | None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.pid, signal.SIGTERM)
            except OSError:
                pass
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(self.pid, signal.SIGKILL)
                except OSError:
                    pass
                self.proc.wait(5)
        try:
            os.close(self.stdin_fd)
        except OSError:
            pass
        return self.proc.returncode


def blocks(line: dict, kind: str) -> list[dict]:
    """Content blocks of one `kind` in an assistant/user line."""
    content = (line.get("message") or {}).get("content")
    if not isinstance(content, list):
        return []
    return [b for b in content if isinstance(b, dict) and b.get("type") == kind]
