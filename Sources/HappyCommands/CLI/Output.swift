#if canImport(Glibc)
import Glibc
#endif
import HappyCore
import HappyCrypto
import HappyNet
import HappyRealtime
import HappyConfig
import HappyServerAPI
import HappySessions
import HappySync
import HappyDaemon

/// Terminal output for commands: plain lines, `warning:` lines, aligned tables, colour
/// (only when stdout is a terminal and `NO_COLOR` is unset) and single JSON documents.
public struct Output: Sendable {
    public enum Color: String, Sendable { case red = "31", green = "32", yellow = "33", blue = "34", dim = "2", bold = "1" }

    public let colorEnabled: Bool
    public let stdoutIsTTY: Bool

    public init(env: [String: String]) {
        stdoutIsTTY = isatty(1) == 1
        colorEnabled = stdoutIsTTY && env["NO_COLOR"] == nil
    }

    public init(colorEnabled: Bool, stdoutIsTTY: Bool = false) {
        self.colorEnabled = colorEnabled
        self.stdoutIsTTY = stdoutIsTTY
    }

    /// Writes text to stdout as is.
    public func write(_ s: String) { Output.writeAll(1, s) }
    /// One line on stdout.
    public func line(_ s: String = "") { Output.writeAll(1, s + "\n") }
    /// One line on stderr.
    public func errorLine(_ s: String) { Output.writeAll(2, s + "\n") }
    /// `warning: <text>` on stderr.
    public func warn(_ s: String) { Output.writeAll(2, "warning: \(s)\n") }

    /// One JSON document (pretty, sorted keys) on stdout.
    public func json(_ v: JSON) { line(v.serialized(pretty: true)) }
    /// One compact JSON value on one line: the records of a `--json` stream (`-f`, JSON Lines).
    public func jsonLine(_ v: JSON) { line(v.serialized(pretty: false)) }

    public func color(_ s: String, _ c: Color) -> String {
        colorEnabled ? "\u{1B}[\(c.rawValue)m\(s)\u{1B}[0m" : s
    }

    /// An aligned table: header row (bold when coloured) then rows; two spaces between
    /// columns, no trailing spaces.
    public func table(_ headers: [String], _ rows: [[String]]) {
        write(Output.formatTable(headers, rows, bold: colorEnabled))
    }

    public static func formatTable(_ headers: [String], _ rows: [[String]], bold: Bool = false) -> String {
        let all = [headers] + rows
        let n = all.map(\.count).max() ?? 0
        var widths = [Int](repeating: 0, count: n)
        for r in all { for (i, c) in r.enumerated() { widths[i] = max(widths[i], c.count) } }
        var out = ""
        for (ri, r) in all.enumerated() {
            var cells: [String] = []
            for (i, c) in r.enumerated() {
                cells.append(i == r.count - 1 ? c : c + String(repeating: " ", count: widths[i] - c.count))
            }
            var l = cells.joined(separator: "  ")
            while l.hasSuffix(" ") { l.removeLast() }
            if ri == 0 && bold { l = "\u{1B}[1m\(l)\u{1B}[0m" }
            out += l + "\n"
        }
        return out
    }

    static func writeAll(_ fd: Int32, _ s: String) {
        var s = s
        s.withUTF8 { buf in
            var off = 0
            while off < buf.count {
                let n = Glibc.write(fd, buf.baseAddress! + off, buf.count - off)
                if n < 0 { if errno == EINTR { continue }; return }
                off += n
            }
        }
    }
}
