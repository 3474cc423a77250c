"""The Happy app's parsing of decrypted session messages, ported from
M:packages/happy-app/sources/sync/typesRaw.ts (slopus/happy 2c8ecacc):

- `rawRecordSchema` (typesRaw.ts:142-463, with `preprocessMessageContent` :367-411 and
  MessageMetaSchema, typesMessageMeta.ts) -> `schema_errors(obj)`;
- `normalizeRawMessage` (typesRaw.ts:761-1211) and `normalizeSessionEnvelope` (:545-759)
  -> `normalize(obj)`: the message the app keeps, or None when it drops it.

    validate_record(obj) -> list[str]   # empty: the app parses the record and keeps it
    schema_errors(obj) -> list[str]     # only the zod schema (a failure: "Unrecognized message type", dropped)
    drop_reason(obj) -> str | None      # why normalizeRawMessage returns null for a record that parses
    normalize(obj, id, local_id, created_at) -> dict | None
    metadata_errors(meta) / agent_state_errors(state) -> list[str]   # storageTypes.ts MetadataSchema / AgentStateSchema
    cli_outdated(meta) -> bool          # the "outdated CLI" banner (version < 0.10.0)

Zod semantics kept: `z.object` ignores unknown keys (its `.passthrough()` keeps them),
`.optional()` allows an absent key but not null, `.nullish()`/`.nullable()` allow null,
`z.number()` is a JSON number (not a boolean), `z.any()` accepts an absent key,
discriminated unions fail on an unknown discriminator, `z.union` needs one member to pass.
The record is not modified (the preprocess step works on a copy).
"""
from __future__ import annotations

import copy
import re
from typing import Any, Callable, Optional

Check = Callable[[Any, str, list], None]
ABSENT = object()


# ---------------------------------------------------------------- tiny zod

def _t(v) -> str:
    if v is ABSENT:
        return "undefined"
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, (int, float)):
        return "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "array"
    if isinstance(v, dict):
        return "object"
    return type(v).__name__


def string(min_len: int = 0, refine: Optional[Callable[[str], bool]] = None, refine_msg: str = "") -> Check:
    def c(v, p, e):
        if not isinstance(v, str):
            e.append(f"{p}: expected string, got {_t(v)}")
        elif len(v) < min_len:
            e.append(f"{p}: string shorter than {min_len}")
        elif refine is not None and not refine(v):
            e.append(f"{p}: {refine_msg}")
    return c


def number() -> Check:
    def c(v, p, e):
        if not isinstance(v, (int, float)) or isinstance(v, bool) or v != v or v in (float("inf"), float("-inf")):
            e.append(f"{p}: expected number, got {_t(v)}")
    return c


def boolean() -> Check:
    def c(v, p, e):
        if not isinstance(v, bool):
            e.append(f"{p}: expected boolean, got {_t(v)}")
    return c


def anything() -> Check:
    return lambda v, p, e: None


def literal(x) -> Check:
    def c(v, p, e):
        if v != x or type(v) is not type(x):
            e.append(f"{p}: expected {x!r}, got {v!r}" if v is not ABSENT else f"{p}: expected {x!r}, got undefined")
    return c


def enum(*xs) -> Check:
    def c(v, p, e):
        if not isinstance(v, str) or v not in xs:
            e.append(f"{p}: expected one of {'|'.join(xs)}, got {v!r}" if v is not ABSENT else
                     f"{p}: expected one of {'|'.join(xs)}, got undefined")
    return c


def optional(ch: Check) -> Check:
    def c(v, p, e):
        if v is not ABSENT:
            ch(v, p, e)
    return c


def nullish(ch: Check) -> Check:
    def c(v, p, e):
        if v is not ABSENT and v is not None:
            ch(v, p, e)
    return c


def array(item: Check) -> Check:
    def c(v, p, e):
        if not isinstance(v, list):
            e.append(f"{p}: expected array, got {_t(v)}")
            return
        for i, x in enumerate(v):
            item(x, f"{p}[{i}]", e)
    return c


def record() -> Check:  # z.record(z.string(), z.unknown())
    def c(v, p, e):
        if not isinstance(v, dict):
            e.append(f"{p}: expected object, got {_t(v)}")
    return c


def integer(positive: bool = False) -> Check:
    def c(v, p, e):
        number()(v, p, e)
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            if v != int(v):
                e.append(f"{p}: expected integer, got {v!r}")
            elif positive and v <= 0:
                e.append(f"{p}: expected a positive number, got {v!r}")
    return c


def record_of(value: Check) -> Check:  # z.record(z.string(), value)
    def c(v, p, e):
        if not isinstance(v, dict):
            e.append(f"{p}: expected object, got {_t(v)}")
            return
        for k, x in v.items():
            value(x, f"{p}[{k!r}]", e)
    return c


def obj(**fields: Check) -> Check:
    def c(v, p, e):
        if not isinstance(v, dict):
            e.append(f"{p}: expected object, got {_t(v)}")
            return
        for k, ch in fields.items():
            ch(v.get(k, ABSENT), f"{p}.{k}", e)
    return c


def union(*members: Check) -> Check:
    def c(v, p, e):
        attempts = []
        for m in members:
            errs: list = []
            m(v, p, errs)
            if not errs:
                return
            attempts.append(errs)
        best = min(attempts, key=len)
        e.append(f"{p}: no union member matches ({'; '.join(best)})")
    return c


def disc(key: str, options: dict) -> Check:
    def c(v, p, e):
        if not isinstance(v, dict):
            e.append(f"{p}: expected object, got {_t(v)}")
            return
        tag = v.get(key, ABSENT)
        ch = options.get(tag) if isinstance(tag, str) else None
        if ch is None:
            e.append(f"{p}.{key}: invalid discriminator value {tag!r} (expected {'|'.join(options)})"
                     if tag is not ABSENT else f"{p}.{key}: invalid discriminator value undefined")
            return
        ch(v, p, e)
    return c


def both(*checks: Check) -> Check:  # z.intersection / .superRefine
    def c(v, p, e):
        for ch in checks:
            ch(v, p, e)
    return c


# ---------------------------------------------------------------- the schemas

usage_data = obj(input_tokens=number(), cache_creation_input_tokens=optional(number()),
                 cache_read_input_tokens=optional(number()), output_tokens=number(),
                 context_window=optional(number()), service_tier=optional(string()))

agent_event = disc("type", {
    "switch": obj(type=literal("switch"), mode=enum("local", "remote")),
    "message": obj(type=literal("message"), message=string()),
    "limit-reached": obj(type=literal("limit-reached"), endsAt=number()),
    "ready": obj(type=literal("ready")),
})

_CUID = re.compile(r"^[0-9a-z]+$")


def is_cuid(v: str) -> bool:
    """@paralleldrive/cuid2 isCuid: 2..32 characters of [0-9a-z]."""
    return isinstance(v, str) and 2 <= len(v) <= 32 and bool(_CUID.match(v))


session_event = disc("t", {
    "text": obj(t=literal("text"), text=string(), thinking=optional(boolean())),
    "service": obj(t=literal("service"), text=string()),
    "tool-call-start": obj(t=literal("tool-call-start"), call=string(), name=string(), title=string(),
                           description=string(), args=record()),
    "tool-call-end": obj(t=literal("tool-call-end"), call=string()),
    "file": obj(t=literal("file"), ref=string(), name=string(), size=number(),
                image=optional(obj(width=number(), height=number(), thumbhash=optional(string())))),
    "turn-start": obj(t=literal("turn-start")),
    "start": obj(t=literal("start"), title=optional(string())),
    "turn-end": obj(t=literal("turn-end"), status=enum("completed", "failed", "cancelled")),
    "stop": obj(t=literal("stop")),
})


def _envelope_refine(v, p, e):
    if not isinstance(v, dict) or not isinstance(v.get("ev"), dict):
        return
    t = v["ev"].get("t")
    if t == "service" and v.get("role") != "agent":
        e.append(f"{p}.role: service events must use role \"agent\"")
    if t in ("start", "stop") and v.get("role") != "agent":
        e.append(f"{p}.role: {t} events must use role \"agent\"")


session_envelope = both(obj(
    id=string(), time=number(), role=enum("user", "agent"), turn=optional(string()),
    subagent=optional(string(refine=is_cuid, refine_msg="subagent must be a cuid2 value")),
    claudeUuid=optional(string(min_len=1)), codexItemId=optional(string(min_len=1)),
    usage=optional(usage_data), ev=session_event), _envelope_refine)

text_block = obj(type=literal("text"), text=string())
tool_use_block = obj(type=literal("tool_use"), id=string(), name=string(), input=anything())
tool_result_block = obj(
    type=literal("tool_result"), tool_use_id=string(),
    content=union(array(obj(type=literal("text"), text=string())), string()),
    is_error=optional(boolean()),
    permissions=optional(obj(
        date=number(), result=enum("approved", "denied"),
        mode=optional(enum("default", "acceptEdits", "bypassPermissions", "plan", "read-only", "safe-yolo", "yolo")),
        allowedTools=optional(array(string())),
        decision=optional(enum("approved", "approved_for_session", "denied", "abort")))))
thinking_block = obj(type=literal("thinking"), thinking=string())
hyphen_tool_call = obj(type=literal("tool-call"), callId=string(), id=optional(string()), name=string(), input=anything())
hyphen_tool_result = obj(type=literal("tool-call-result"), callId=string(), tool_use_id=optional(string()),
                         output=anything(), content=anything(), is_error=optional(boolean()))
BLOCKS = {"text": text_block, "tool_use": tool_use_block, "tool_result": tool_result_block,
          "thinking": thinking_block, "tool-call": hyphen_tool_call, "tool-call-result": hyphen_tool_result}


def content_block(v, p, e):
    """z.union of the six block schemas, reported by the block's own type when it is known."""
    if isinstance(v, dict) and isinstance(v.get("type"), str) and v["type"] in BLOCKS:
        BLOCKS[v["type"]](v, p, e)
    elif isinstance(v, dict):
        e.append(f"{p}.type: content block type {v.get('type', 'undefined')!r} is not one of "
                 f"{'|'.join(BLOCKS)}")
    else:
        e.append(f"{p}: expected object, got {_t(v)}")


output_data = both(
    disc("type", {
        "system": obj(type=literal("system")),
        "result": obj(type=literal("result"), result=nullish(string()), subtype=nullish(string()),
                      is_error=nullish(boolean())),
        "summary": obj(type=literal("summary"), summary=string()),
        "assistant": obj(type=literal("assistant"),
                         message=obj(role=literal("assistant"), model=string(), content=array(content_block),
                                     usage=optional(usage_data)),
                         parent_tool_use_id=nullish(string())),
        "user": obj(type=literal("user"),
                    message=obj(role=literal("user"), content=union(string(), array(content_block))),
                    parent_tool_use_id=nullish(string()), toolUseResult=anything()),
    }),
    obj(isSidechain=nullish(boolean()), isCompactSummary=nullish(boolean()), isMeta=nullish(boolean()),
        uuid=nullish(string()), parentUuid=nullish(string())))

_acp_data = disc("type", {
    "reasoning": obj(type=literal("reasoning"), message=string()),
    "message": obj(type=literal("message"), message=string()),
    "thinking": obj(type=literal("thinking"), text=string()),
    "tool-call": obj(type=literal("tool-call"), callId=string(), input=anything(), name=string(), id=string()),
    "tool-result": obj(type=literal("tool-result"), callId=string(), output=anything(), id=string(),
                       isError=optional(boolean())),
    "tool-call-result": obj(type=literal("tool-call-result"), callId=string(), output=anything(), id=string()),
    "file-edit": obj(type=literal("file-edit"), description=string(), filePath=string(), diff=optional(string()),
                     oldContent=optional(string()), newContent=optional(string()), id=string()),
    "terminal-output": obj(type=literal("terminal-output"), data=string(), callId=string()),
    "task_started": obj(type=literal("task_started"), id=string()),
    "task_complete": obj(type=literal("task_complete"), id=string()),
    "turn_aborted": obj(type=literal("turn_aborted"), id=string()),
    "permission-request": obj(type=literal("permission-request"), permissionId=string(), toolName=string(),
                              description=string(), options=anything()),
    "token_count": obj(type=literal("token_count")),
})

agent_content = disc("type", {
    "output": obj(type=literal("output"), data=output_data),
    "event": obj(type=literal("event"), id=string(), data=agent_event),
    "codex": obj(type=literal("codex"), data=disc("type", {
        "reasoning": obj(type=literal("reasoning"), message=string()),
        "message": obj(type=literal("message"), message=string()),
        "tool-call": obj(type=literal("tool-call"), callId=string(), input=anything(), name=string(), id=string()),
        "tool-call-result": obj(type=literal("tool-call-result"), callId=string(), output=anything(), id=string()),
    })),
    "session": obj(type=literal("session"), data=session_envelope),
    "acp": obj(type=literal("acp"), provider=enum("gemini", "codex", "claude", "opencode"), data=_acp_data),
})

message_meta = obj(
    sentFrom=optional(string()), permissionMode=optional(string()), model=nullish(string()),
    modelProviderId=optional(string()), fallbackModel=nullish(string()), customSystemPrompt=nullish(string()),
    appendSystemPrompt=nullish(string()), allowedTools=nullish(array(string())),
    disallowedTools=nullish(array(string())), effort=nullish(string()), displayText=optional(string()))

raw_record = disc("role", {
    "agent": obj(role=literal("agent"), content=agent_content, meta=optional(message_meta)),
    "user": obj(role=literal("user"), content=obj(type=literal("text"), text=string()), meta=optional(message_meta)),
    "session": obj(role=literal("session"), content=obj(type=literal("session"), data=session_envelope),
                   meta=optional(message_meta)),
})


# ---------------------------------------------------------------- preprocess (typesRaw.ts:367-411)

def _normalize_block(item):
    if not isinstance(item, dict):
        return item
    if item.get("type") == "tool-call":
        out = dict(item, type="tool_use")
        out["id"] = item.get("callId", ABSENT)
        if out["id"] is ABSENT:
            del out["id"]
        return out
    if item.get("type") == "tool-call-result":
        out = dict(item, type="tool_result")
        if "callId" in item:
            out["tool_use_id"] = item["callId"]
        else:
            out.pop("tool_use_id", None)
        content = item.get("output")
        if content is None:
            content = item.get("content")
        out["content"] = "" if content is None else content
        out["is_error"] = item.get("is_error") if item.get("is_error") is not None else False
        return out
    return item


def preprocess(data: Any) -> Any:
    if not isinstance(data, dict):
        return data
    data = copy.deepcopy(data)
    content = data.get("content")
    if data.get("role") == "agent" and isinstance(content, dict) and content.get("type") == "output":
        d = content.get("data")
        msg = d.get("message") if isinstance(d, dict) else None
        if isinstance(msg, dict) and isinstance(msg.get("content"), list):
            msg["content"] = [_normalize_block(x) for x in msg["content"]]
    if data.get("role") == "session" and isinstance(content, dict):
        if (content.get("type") != "session" and isinstance(content.get("id"), str)
                and isinstance(content.get("role"), str) and "ev" in content):
            data["content"] = {"type": "session", "data": content}
    return data


# ---------------------------------------------------------------- public API

def schema_errors(obj_: Any) -> list[str]:
    """Zod issues of rawRecordSchema.safeParse (empty: it parses)."""
    e: list = []
    raw_record(preprocess(obj_), "record", e)
    return e


def _strip_task_notifications(text: str) -> str:
    """stripLeadingTaskNotificationWrappers (M:packages/happy-wire/src/controlMessages.ts)."""
    open_, close = "<task-notification>", "</task-notification>"

    def end_of(t: str):
        if not t.startswith(open_):
            return None
        depth, cursor = 1, len(open_)
        while depth > 0:
            no, nc = t.find(open_, cursor), t.find(close, cursor)
            if nc == -1:
                return None
            if no != -1 and no < nc:
                depth += 1
                cursor = no + len(open_)
                continue
            depth -= 1
            cursor = nc + len(close)
        return cursor

    remainder, stripped = text.lstrip(), False
    while remainder.startswith(open_):
        end = end_of(remainder)
        if end is None:
            break
        stripped = True
        remainder = remainder[end:].lstrip()
    return remainder if stripped else text


def _js_truthy(v) -> bool:
    return v not in (None, False, 0, "", ABSENT)


def _envelope_drop(env: dict) -> Optional[str]:
    ev = env["ev"]
    usage_only = env["role"] == "agent" and ev["t"] == "service" and not ev["text"].strip() and bool(env.get("usage"))
    if env["role"] == "agent" and not env.get("turn") and not usage_only:
        return "session envelope from the agent without `turn`"
    if ev["t"] == "turn-start":
        return "turn-start is not rendered"
    if ev["t"] in ("start", "stop"):
        return f"{ev['t']} is not rendered"
    if ev["t"] == "text":
        visible = _strip_task_notifications(ev["text"])
        if visible != ev["text"] and not visible.strip():
            return "text is only a task notification"
    return None


def drop_reason(obj_: Any) -> Optional[str]:
    """Why normalizeRawMessage returns null although the record parses; None when it keeps it.
    (Call on records that pass schema_errors.)"""
    raw = preprocess(obj_)
    role = raw["role"]
    if role == "user":
        return None
    if role == "session":
        return _envelope_drop(raw["content"]["data"])
    c = raw["content"]
    if c["type"] == "output":
        d = c["data"]
        if _js_truthy(d.get("isMeta")):
            return "isMeta records are skipped"
        if _js_truthy(d.get("isCompactSummary")):
            return "isCompactSummary records are skipped"
        if d["type"] == "result":
            return None if _js_truthy(d.get("result")) else "result without text renders nothing"
        if d["type"] == "assistant":
            return None if _js_truthy(d.get("uuid")) else "assistant record without uuid"
        if d["type"] == "user":
            return None if _js_truthy(d.get("uuid")) else "user record without uuid"
        return f"output of type {d['type']!r} renders nothing"
    if c["type"] in ("event", "codex"):
        return None
    if c["type"] == "session":
        return _envelope_drop(c["data"])
    if c["type"] == "acp":
        if c["data"]["type"] in ("task_started", "task_complete", "turn_aborted", "token_count"):
            return f"acp {c['data']['type']} is not rendered"
        return None
    return "unknown"


def validate_record(obj_: Any) -> list[str]:
    """Empty when the app parses the record and keeps it (normalizeRawMessage non-null);
    otherwise the schema issues, or the drop reason."""
    errs = schema_errors(obj_)
    if errs:
        return errs
    why = drop_reason(obj_)
    return [f"dropped: {why}"] if why else []


def normalize(obj_: Any, id: str = "msg", local_id: Optional[str] = None, created_at: int = 0) -> Optional[dict]:
    """The NormalizedMessage the app builds for Claude-style records (role user, agent
    output/event, session envelopes); None when it drops it. codex/acp records give a
    minimal {"role": "agent", ...} stand-in."""
    if schema_errors(obj_) or drop_reason(obj_):
        return None
    raw = preprocess(obj_)
    base = {"id": id, "localId": local_id, "createdAt": created_at}
    meta = raw.get("meta")
    if raw["role"] == "user":
        return dict(base, role="user", content=raw["content"], isSidechain=False, meta=meta)
    if raw["role"] == "session" or raw["content"]["type"] == "session":
        env = raw["content"]["data"]
        return _normalize_envelope(env, local_id, meta)
    c = raw["content"]
    if c["type"] == "event":
        return dict(base, role="event", content=c["data"], isSidechain=False)
    if c["type"] != "output":
        return dict(base, role="agent", content=[], isSidechain=False, meta=meta, note=f"{c['type']} record")
    d = c["data"]
    uuid, parent = d.get("uuid"), d.get("parentUuid") if d.get("parentUuid") is not None else None
    if d["type"] == "result":
        return dict(base, role="agent", isSidechain=False, meta=meta, content=[
            {"type": "text", "text": d["result"], "uuid": uuid if uuid is not None else id, "parentUUID": parent}])
    if d["type"] == "assistant":
        content = []
        for b in d["message"]["content"]:
            if b["type"] in ("text", "thinking"):
                content.append(dict(b, uuid=uuid, parentUUID=parent))
            elif b["type"] == "tool_use":
                inp = b.get("input")
                desc = inp["description"] if isinstance(inp, dict) and isinstance(inp.get("description"), str) else None
                content.append(dict(b, type="tool-call", description=desc, uuid=uuid, parentUUID=parent))
        return dict(base, role="agent", isSidechain=bool(d.get("isSidechain") or False), content=content,
                    meta=meta, usage=d["message"].get("usage"))
    # user
    mc = d["message"]["content"]
    if _js_truthy(d.get("isSidechain")) and isinstance(mc, str):
        return dict(base, role="agent", isSidechain=True, content=[{"type": "sidechain", "uuid": uuid, "prompt": mc}])
    if isinstance(mc, str):
        return dict(base, role="user", isSidechain=False, content={"type": "text", "text": mc}, claudeUuid=uuid)
    content = []
    for b in mc:
        if b["type"] == "tool_result":
            if _js_truthy(d.get("toolUseResult")):
                value = d["toolUseResult"]
            elif isinstance(b["content"], str):
                value = b["content"]
            else:
                value = b["content"][0]["text"] if b["content"] else ""
            content.append(dict(b, type="tool-result", content=value, is_error=bool(b.get("is_error") or False),
                                uuid=uuid, parentUUID=parent, permissions=b.get("permissions")))
    return dict(base, role="agent", isSidechain=bool(d.get("isSidechain") or False), content=content, meta=meta)


def _normalize_envelope(env: dict, local_id, meta) -> Optional[dict]:
    ev = env["ev"]
    base = {"id": env["id"], "localId": local_id, "createdAt": env["time"], "meta": meta}
    parent = env.get("subagent")
    side = parent is not None
    if ev["t"] == "turn-end":
        return dict(base, role="event", isSidechain=False, content={"type": "ready"})
    if ev["t"] == "service":
        usage_only = not ev["text"].strip() and bool(env.get("usage"))
        return dict(base, role="agent", isSidechain=side, usage=env.get("usage"), content=[] if usage_only else [
            {"type": "text", "text": ev["text"], "uuid": env["id"], "parentUUID": parent}])
    if ev["t"] == "text":
        text = _strip_task_notifications(ev["text"])
        if env["role"] == "user":
            return dict(base, role="user", isSidechain=False, content={"type": "text", "text": text})
        kind = "thinking" if ev.get("thinking") else "text"
        return dict(base, role="agent", isSidechain=side, usage=env.get("usage"),
                    content=[{"type": kind, kind: text, "uuid": env["id"], "parentUUID": parent}])
    if ev["t"] == "tool-call-start":
        return dict(base, role="agent", isSidechain=side, content=[
            {"type": "tool-call", "id": ev["call"], "name": ev["name"] or "unknown", "input": ev["args"],
             "description": ev["description"], "uuid": env["id"], "parentUUID": parent}])
    if ev["t"] == "tool-call-end":
        return dict(base, role="agent", isSidechain=side, content=[
            {"type": "tool-result", "tool_use_id": ev["call"], "content": None, "is_error": False,
             "uuid": env["id"], "parentUUID": parent}])
    if ev["t"] == "file":
        return dict(base, role="agent", isSidechain=side, content=[
            {"type": "tool-call", "id": env["id"], "name": "file", "input": {"ref": ev["ref"], "name": ev["name"],
                                                                              "size": ev["size"]},
             "uuid": env["id"], "parentUUID": parent},
            {"type": "tool-result", "tool_use_id": env["id"], "content": None, "is_error": False,
             "uuid": env["id"] + ":result", "parentUUID": env["id"]}])
    return None


# ---------------------------------------------------------------- session metadata and agentState
# M:packages/happy-app/sources/sync/storageTypes.ts: MetadataSchema (:7-181) and AgentStateSchema
# (:309-339). A value that fails makes the app treat the whole metadata as null (the session loses
# title, path and grouping; sessionEncryption.ts:160-167) or the whole agentState as {} (no
# permission cards; :193-197).

_code_value = dict(code=string(), value=string(), description=nullish(string()))
_id_kind_name = obj(id=string(), kind=string(), name=string())
metadata_schema = obj(
    models=optional(array(obj(**_code_value, id=optional(string()), name=optional(string()),
                              providerId=optional(string()), providerKind=optional(string()),
                              providerName=optional(string()), provider=optional(_id_kind_name),
                              contextWindow=optional(number()), serviceTiers=optional(array(string())),
                              thinkingLevels=optional(array(string())), defaultThinkingLevel=optional(string())))),
    currentModelCode=optional(string()),
    operatingModes=optional(array(obj(**_code_value, kind=optional(string())))),
    currentOperatingModeCode=optional(string()),
    thoughtLevels=optional(array(obj(**_code_value))),
    currentThoughtLevelCode=optional(string()),
    rigMetadataVersion=optional(integer(positive=True)),
    client=optional(obj(id=string(), name=string(), version=string())),
    provider=optional(_id_kind_name),
    providers=optional(array(_id_kind_name)),
    model=optional(obj(providerId=string(), id=string())),
    currentModelProviderId=optional(string()),
    reasoning=optional(obj(current=nullish(string()), levels=array(string()))),
    session=optional(obj(status=string(), permissionMode=string(), modelLocked=boolean(),
                         serviceTier=optional(string()))),
    capabilities=optional(obj(
        abort=boolean(), attachments=obj(enabled=boolean(), maxBytes=number(), mediaTypes=array(string())),
        files=obj(browse=boolean(), read=boolean(), search=boolean(), write=boolean()),
        modelSelection=boolean(), reasoningSelection=boolean(), permissionModeSelection=boolean(),
        resume=boolean(), rpcMethods=array(string()), shell=boolean(), steering=boolean())),
    activity=optional(obj(subagents=obj(running=number(), queued=number(), total=number()),
                          workflows=obj(running=number(), total=number()), processes=obj(running=number()),
                          tasks=obj(pending=number(), inProgress=number(), completed=number(), total=number()))),
    path=string(), host=string(), version=optional(string()), name=optional(string()), os=optional(string()),
    summary=optional(obj(text=string(), updatedAt=number())),
    machineId=optional(string()), claudeSessionId=optional(string()), codexThreadId=optional(string()),
    tools=optional(array(string())), slashCommands=optional(array(string())),
    mcpServers=optional(array(obj(name=string(), status=string()))), skills=optional(array(string())),
    homeDir=optional(string()), happyHomeDir=optional(string()), startedFromDaemon=optional(boolean()),
    hostPid=optional(number()), startedBy=optional(enum("daemon", "terminal")), flavor=nullish(string()),
    project=optional(_id_kind_name), workspace=optional(_id_kind_name), sandbox=anything(),
    dangerouslySkipPermissions=nullish(boolean()), lifecycleState=optional(string()),
    lifecycleStateSince=optional(number()), archivedBy=optional(string()), archiveReason=optional(string()),
    parentSessionId=optional(string()), forkedFromMessageId=optional(string()), isSideChat=optional(boolean()),
    permissionMode=nullish(string()), modelMode=nullish(string()), effortLevel=nullish(string()))

_decision = enum("approved", "approved_for_session", "denied", "abort")
agent_state_schema = obj(
    controlledByUser=nullish(boolean()),
    # usageLimits has .catch(undefined): it never fails the parse. communications,
    # completedCommunications and agentGoalStatus are only checked for their outer shape.
    communications=nullish(record()), completedCommunications=nullish(record()),
    requests=nullish(record_of(obj(tool=string(), arguments=anything(), createdAt=nullish(number()),
                                   toolUseId=nullish(string())))),
    completedRequests=nullish(record_of(obj(
        tool=string(), arguments=anything(), createdAt=nullish(number()), completedAt=nullish(number()),
        status=enum("canceled", "denied", "approved"), reason=nullish(string()), mode=nullish(string()),
        allowedTools=nullish(array(string())), decision=nullish(_decision), toolUseId=nullish(string())))),
    agentGoalStatus=optional(record()))

MINIMUM_CLI_VERSION = "0.10.0"


def metadata_errors(meta: Any) -> list[str]:
    """Issues of MetadataSchema.safeParse (empty: the app keeps the metadata). Note that
    `startedBy` must be "daemon" or "terminal": any other value (e.g. "mobile-app") drops the
    whole metadata."""
    e: list = []
    metadata_schema(meta, "metadata", e)
    return e


def agent_state_errors(state: Any) -> list[str]:
    """Issues of AgentStateSchema.safeParse (empty: the app keeps the agentState)."""
    e: list = []
    agent_state_schema(state, "agentState", e)
    return e


def cli_outdated(meta: dict) -> bool:
    """The app's "outdated CLI" banner: `version` set and lower than 0.10.0 (versionUtils.ts)."""
    v = meta.get("version") if isinstance(meta, dict) else None
    if not v:
        return False

    def parts(x):
        out = []
        for p in str(x).split("-")[0].split("."):
            try:
                out.append(float(p))
            except ValueError:
                out.append(float("nan"))
        return out
    a, b = parts(v), parts(MINIMUM_CLI_VERSION)
    n = max(len(a), len(b))
    a += [0.0] * (n - len(a))
    b += [0.0] * (n - len(b))
    for x, y in zip(a, b):
        if x > y:
            return False
        if x < y:
            return True
    return False  # equal, or NaN parts (JS comparisons with NaN are false: counts as supported)
