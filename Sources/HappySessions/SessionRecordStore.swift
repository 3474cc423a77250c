import FoundationEssentials
#if canImport(Glibc)
import Glibc
#endif
import HappyCore
import HappyConfig

/// The on-disk shape of `sessions/ID/session.json`: the wire shape plus what the daemon
/// needs after a restart (`processStartTime`, `isError`, `malformedLines`).
extension SessionRecord {
    var persistedJSON: JSON {
        var j = json
        if case .object(var o) = j {
            o["exitCode"] = exitCode.map { .int(Int($0)) } ?? .null
            if let processStartTime { o["processStartTime"] = .number(Double(processStartTime)) }
            if let isError { o["isError"] = .bool(isError) }
            o["malformedLines"] = .int(malformedLines)
            j = .object(o)
        }
        return j
    }

    /// nil when a required field is missing or has the wrong type.
    init?(persisted j: JSON) {
        guard let id = j["id"]?.string, let pid = j["pid"]?.int, let directory = j["directory"]?.string,
              let statusRaw = j["status"]?.string, let status = SessionStatus(rawValue: statusRaw),
              let startedAt = j["startedAt"]?.int, let stdoutPath = j["stdoutPath"]?.string,
              let stderrPath = j["stderrPath"]?.string, pid > 0, pid <= Int(Int32.max)
        else { return nil }
        self.init(id: id, pid: Int32(pid), directory: directory, status: status,
                  startedBy: j["startedBy"]?.string ?? "cli", startedAt: Int64(startedAt),
                  stdoutPath: stdoutPath, stderrPath: stderrPath)
        endedAt = j["endedAt"]?.int.map { Int64($0) }
        exitCode = j["exitCode"]?.int.map { Int32(truncatingIfNeeded: $0) }
        claudeSessionId = j["claudeSessionId"]?.string
        model = j["model"]?.string
        lastEventType = j["lastEventType"]?.string
        lastEventAt = j["lastEventAt"]?.int.map { Int64($0) }
        numTurns = j["numTurns"]?.int
        costUsd = j["costUsd"]?.double
        stopReason = j["stopReason"]?.string.flatMap { StopReason(rawValue: $0) }
        processStartTime = j["processStartTime"]?.double.flatMap { $0 >= 0 && $0 < 1.8e19 ? UInt64($0) : nil }
        isError = j["isError"]?.bool
        malformedLines = j["malformedLines"]?.int ?? 0
    }
}

/// Splits appended output into complete lines and extracts what the record needs.
struct StreamJSONScanner {
    /// Bytes of a line whose newline has not arrived yet.
    var pending: [UInt8] = []
    /// A partial line longer than this is dropped (counted as malformed).
    var maxLine = 64 << 20
    var droppedPartial = 0

    /// Appends bytes and returns every complete line (without the newline).
    mutating func feed(_ bytes: UnsafeRawBufferPointer, into lines: inout [[UInt8]]) {
        var start = 0
        let b = bytes.bindMemory(to: UInt8.self)
        while let nl = b[start...].firstIndex(of: 0x0A) {
            if pending.isEmpty {
                lines.append(Array(b[start..<nl]))
            } else {
                pending.append(contentsOf: b[start..<nl])
                lines.append(pending)
                pending.removeAll(keepingCapacity: false)
            }
            start = nl + 1
        }
        if start < b.count {
            pending.append(contentsOf: b[start...])
            if pending.count > maxLine {
                pending.removeAll(keepingCapacity: false)
                droppedPartial += 1
            }
        }
    }

    enum Line: Equatable {
        case blank
        case malformed
        /// Our own rotation marker (`type: "happy"`): not an event of the session.
        case marker
        case event(type: String?, initInfo: (sessionId: String?, model: String?)?, result: (numTurns: Int?, costUsd: Double?, isError: Bool?)?)

        static func == (a: Line, b: Line) -> Bool {
            switch (a, b) {
            case (.blank, .blank), (.malformed, .malformed), (.marker, .marker): return true
            case (.event(let t1, let i1, let r1), .event(let t2, let i2, let r2)):
                return t1 == t2 && i1?.sessionId == i2?.sessionId && i1?.model == i2?.model
                    && (i1 == nil) == (i2 == nil) && (r1 == nil) == (r2 == nil)
                    && r1?.numTurns == r2?.numTurns && r1?.costUsd == r2?.costUsd && r1?.isError == r2?.isError
            default: return false
            }
        }
    }

    static func interpret(_ line: [UInt8]) -> Line {
        var l = line[...]
        while let last = l.last, last == 0x0D || last == 0x20 || last == 0x09 { l = l.dropLast() }
        if l.allSatisfy({ $0 == 0x20 || $0 == 0x09 }) { return .blank }
        guard let j = try? JSON.parse(l), case .object = j else { return .malformed }
        let type = j["type"]?.string
        if type == "happy" { return .marker }
        var initInfo: (String?, String?)? = nil
        var result: (Int?, Double?, Bool?)? = nil
        if type == "system", j["subtype"]?.string == "init" {
            initInfo = (j["session_id"]?.string, j["model"]?.string)
        } else if type == "result" {
            result = (j["num_turns"]?.int, j["total_cost_usd"]?.double, j["is_error"]?.bool)
        }
        return .event(type: type, initInfo: initInfo, result: result)
    }
}
