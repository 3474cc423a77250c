import Foundation
import Testing
@testable import HappyCore
@testable import HappyCrypto
@testable import HappySessions
@testable import HappySync

@Suite struct OutputEncoderTests {
    let enc = LegacyOutputEncoder()

    @Test func assistantLinesKeepOnlyBlocksTheAppRendersAndGetAUUID() throws {
        let line: JSON = ["type": "assistant", "session_id": "c1", "message": [
            "id": "msg_1", "role": "assistant", "model": "claude-x",
            "content": [["type": "text", "text": "hi"], ["type": "redacted_thinking", "data": "zz"],
                        ["type": "tool_use", "id": "toolu_1", "name": "Bash", "input": ["command": "ls"]],
                        ["type": "server_tool_use", "id": "s"], ["type": "thinking", "thinking": "hmm"]],
        ], "parent_tool_use_id": .null]
        let msgs = enc.messages(for: line, localId: "sess:100")
        #expect(msgs.count == 1 && msgs[0].localId == "sess:100")
        let c = msgs[0].content
        #expect(c["role"] == "agent" && c["meta"]?["sentFrom"] == "cli" && c["content"]?["type"] == "output")
        let data = try #require(c["content"]?["data"])
        #expect(data["message"]?["content"]?.array?.compactMap { $0["type"]?.string } == ["text", "tool_use", "thinking"])
        #expect(data["uuid"]?.string?.count == 36 && data["isSidechain"] == false)
        // Deterministic: the same line gets the same uuid, another offset another one.
        #expect(enc.messages(for: line, localId: "sess:100")[0] == msgs[0])
        #expect(enc.messages(for: line, localId: "sess:101")[0].content["content"]?["data"]?["uuid"] != data["uuid"])
        // Claude's own uuid is kept.
        #expect(enc.messages(for: line.setting("uuid", "u-1"), localId: "x")[0].content["content"]?["data"]?["uuid"] == "u-1")
        // Nothing left to show: nothing sent.
        let empty: JSON = ["type": "assistant", "message": ["role": "assistant", "content": [["type": "redacted_thinking"]]]]
        #expect(enc.messages(for: empty, localId: "x").isEmpty)
        // A model is always there (the app's schema requires one).
        let noModel: JSON = ["type": "assistant", "message": ["content": [["type": "text", "text": "a"]]]]
        #expect(enc.messages(for: noModel, localId: "x")[0].content["content"]?["data"]?["message"]?["model"] == "unknown")
    }

    @Test func userLinesOnlyWithToolResultsReducedToText() {
        let result: JSON = ["type": "user", "message": ["role": "user", "content": [
            ["type": "tool_result", "tool_use_id": "toolu_1", "is_error": false,
             "content": [["type": "text", "text": "ok"], ["type": "image", "source": ["data": "zz"]]]],
        ]], "tool_use_result": ["stdout": "ok"]]
        let m = enc.messages(for: result, localId: "s:5")
        #expect(m.count == 1)
        let block = m[0].content["content"]?["data"]?["message"]?["content"]?.array?.first
        #expect(block?["content"] == [["type": "text", "text": "ok"]] && block?["tool_use_id"] == "toolu_1")
        #expect(m[0].content["content"]?["data"]?["toolUseResult"] == ["stdout": "ok"])
        // claude's echo of a prompt (string content) and meta lines are not sent.
        #expect(enc.messages(for: ["type": "user", "message": ["role": "user", "content": "hello"]], localId: "x").isEmpty)
        #expect(enc.messages(for: ["type": "user", "isMeta": true, "message": ["content": [["type": "tool_result", "tool_use_id": "t"]]]],
                              localId: "x").isEmpty)
    }

    @Test func resultsBecomeReadyAndFailuresAMessageUnlessAnAbortCausedThem() {
        let ok: JSON = ["type": "result", "subtype": "success", "is_error": false, "result": "done"]
        let m = enc.messages(for: ok, localId: "s:9")
        #expect(m.count == 1 && m[0].localId == "s:9-ready" && m[0].content["content"]?["data"] == ["type": "ready"])
        #expect(m[0].content["content"]?["id"]?.string?.count == 36)
        let apiError: JSON = ["type": "result", "subtype": "success", "is_error": true, "result": "API Error: 500"]
        let e = enc.messages(for: apiError, localId: "s:10")
        #expect(e.count == 2 && e[1].content["content"]?["data"] == ["type": "message", "message": "API Error: 500"])
        let noText: JSON = ["type": "result", "subtype": "error_max_turns", "is_error": true]
        #expect(enc.messages(for: noText, localId: "s:11")[1].content["content"]?["data"]?["message"] == "Turn failed: error_max_turns")
        let aborted: JSON = ["type": "result", "subtype": "error_during_execution", "is_error": true, "terminal_reason": "aborted_tools"]
        #expect(enc.messages(for: aborted, localId: "s:12").count == 1)
        for skip: JSON in [["type": "system", "subtype": "init"], ["type": "control_request"], ["type": "happy", "subtype": "permission"],
                           ["type": "stream_event"]] {
            #expect(enc.messages(for: skip, localId: "x").isEmpty)
        }
    }
}

@Suite struct SessionSyncFileTests {
    @Test func roundTripsAndRefusesWhatItCannotRead() throws {
        let dir = NSTemporaryDirectory() + "happy-sync-\(UUID().uuidString)"
        try FileIO.ensureDirectory(dir)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var f = SessionSyncFile(tag: "t1", key: SecureRandom.bytes(32), variant: .dataKey)
        f.serverSessionId = "cm1"; f.lastSeq = 7; f.sentOffset = 12345; f.promptCount = 2
        f.pending = [.init(localId: "t1:p2", afterOffset: 100, content: ["role": "user"])]
        try f.save(dir)
        #expect(FileIO.mode(dir + "/sync.json") == 0o600)
        #expect(try SessionSyncFile.load(dir) == f)
        #expect(try SessionSyncFile.load(dir + "/none") == nil)
        // Legacy: no key stored (the account secret is the key).
        let l = SessionSyncFile(tag: "t2", key: nil, variant: .legacy)
        #expect(SessionSyncFile(json: l.json) == l && l.json["key"] == .null)
        // A dataKey file without a usable key, or garbage: an error, never a silent overwrite.
        #expect(SessionSyncFile(json: ["tag": "t", "variant": "dataKey", "key": "AAAA"]) == nil)
        try "not json".write(toFile: dir + "/sync.json", atomically: true, encoding: .utf8)
        #expect(throws: FileIOError.self) { try SessionSyncFile.load(dir) }
    }
}
