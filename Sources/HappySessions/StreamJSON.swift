import FoundationEssentials
#if canImport(Glibc)
import Glibc
#endif
import HappyCore
import HappyConfig

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

    /// One line of claude's stdout.
    enum Line {
        case blank
        case malformed
        /// Our own rotation marker (`type: "happy"`): not an event of the session.
        case marker(JSON)
        /// A stream-json object with its `type`.
        case event(type: String?, JSON)
    }

    static func interpret(_ line: [UInt8]) -> Line {
        var l = line[...]
        while let last = l.last, last == 0x0D || last == 0x20 || last == 0x09 { l = l.dropLast() }
        if l.allSatisfy({ $0 == 0x20 || $0 == 0x09 }) { return .blank }
        guard let j = try? JSON.parse(l), case .object = j else { return .malformed }
        let type = j["type"]?.string
        if type == "happy" { return .marker(j) }
        return .event(type: type, j)
    }
}
