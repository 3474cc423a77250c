#if canImport(Glibc)
import Glibc
#endif
import HappyCore

/// All command output goes through here: plain lines, `warning:` lines, aligned tables,
/// colour (only when stdout is a terminal and `NO_COLOR` is unset) and JSON.
///
/// One JSON style: `json` prints one document (pretty, sorted keys) on stdout — every
/// `--json` of a command that ends; `jsonLine` prints one compact value per line for the
/// streams of `-f --json` (JSON Lines).
///
/// Text written to a terminal passes through `terminalSafe` first: strings that come
/// from the server, from files or from other processes (machine metadata, ids, paths,
/// log lines) cannot move the cursor, retitle the window or rewrite the screen. The only
/// escape sequences that reach a terminal are the ones Output adds itself (colour, the
/// waiting indicator). Text to a pipe or a file is written as is.
public struct Output: Sendable {
    public enum Color: String, Sendable { case red = "31", green = "32", yellow = "33", blue = "34", dim = "2", bold = "1" }
    public enum Stream: Int32, Sendable { case stdout = 1, stderr = 2 }
    /// Where bytes go (the file descriptors, or a capture in tests).
    public typealias Sink = @Sendable (Stream, String) -> Void

    public let stdoutIsTTY: Bool
    public let stderrIsTTY: Bool
    public let colorEnabled: Bool
    private let sink: Sink

    /// The process's stdout and stderr.
    public init(env: [String: String]) {
        stdoutIsTTY = isatty(1) == 1
        stderrIsTTY = isatty(2) == 1
        colorEnabled = stdoutIsTTY && env["NO_COLOR"] == nil
        sink = { stream, s in StandardStreams.write(stream.rawValue, s) }
    }

    /// Any sink, with the terminal checks given (tests).
    public init(stdoutIsTTY: Bool = false, stderrIsTTY: Bool = false, colorEnabled: Bool = false,
                sink: @escaping Sink) {
        self.stdoutIsTTY = stdoutIsTTY
        self.stderrIsTTY = stderrIsTTY
        self.colorEnabled = colorEnabled
        self.sink = sink
    }

    private func emit(_ stream: Stream, _ s: String) {
        let tty = stream == .stdout ? stdoutIsTTY : stderrIsTTY
        sink(stream, tty ? Output.terminalSafe(s) : s)
    }

    // MARK: text on stdout

    /// Text on stdout as is (help, scripts, several lines).
    public func write(_ s: String) { emit(.stdout, s) }
    /// One line on stdout.
    public func line(_ s: String = "") { emit(.stdout, s + "\n") }

    /// A piece of a styled line.
    public struct Span: Sendable {
        public var text: String
        public var color: Color?
        public static func plain(_ s: String) -> Span { Span(text: s, color: nil) }
        public static func colored(_ s: String, _ c: Color) -> Span { Span(text: s, color: c) }
    }

    /// One line on stdout with coloured pieces (colour only when enabled).
    public func styledLine(_ spans: Span...) {
        var out = ""
        for sp in spans {
            let text = stdoutIsTTY ? Output.terminalSafe(sp.text) : sp.text
            out += sp.color.map { paint(text, $0) } ?? text
        }
        sink(.stdout, out + "\n")
    }

    /// An aligned table: header row (bold when coloured) then rows; two spaces between
    /// columns, no trailing spaces. `colors`: a colour per column index.
    public func table(_ headers: [String], _ rows: [[String]], colors: [Int: Color] = [:]) {
        let clean: ([String]) -> [String] = { r in stdoutIsTTY ? r.map(Output.terminalSafe) : r }
        sink(.stdout, Output.formatTable(clean(headers), rows.map(clean), bold: colorEnabled,
                                         paint: colorEnabled ? { s, col in colors[col].map { paint(s, $0) } ?? s } : nil))
    }

    // MARK: stderr

    /// One line on stderr.
    public func errorLine(_ s: String) { emit(.stderr, s + "\n") }
    /// `warning: <text>` on stderr.
    public func warn(_ s: String) { emit(.stderr, "warning: \(s)\n") }
    /// Text on stderr without a newline (a prompt).
    public func prompt(_ s: String) { emit(.stderr, s) }
    /// A status line on a terminal's stderr, redrawn in place (`""` clears it).
    public func status(_ s: String) {
        sink(.stderr, "\r\u{1B}[K" + Output.terminalSafe(s))
    }

    // MARK: JSON

    /// One JSON document (pretty, sorted keys) on stdout: the output of `--json`.
    public func json(_ v: JSON) { sink(.stdout, v.serialized(pretty: true) + "\n") }
    /// One compact JSON value on one line: the records of a `--json` stream (`-f`, JSON Lines).
    public func jsonLine(_ v: JSON) { sink(.stdout, v.serialized(pretty: false) + "\n") }

    // MARK: helpers

    private func paint(_ s: String, _ c: Color) -> String {
        colorEnabled ? "\u{1B}[\(c.rawValue)m\(s)\u{1B}[0m" : s
    }

    public static func formatTable(_ headers: [String], _ rows: [[String]], bold: Bool = false,
                                   paint: ((String, Int) -> String)? = nil) -> String {
        let all = [headers] + rows
        let n = all.map(\.count).max() ?? 0
        var widths = [Int](repeating: 0, count: n)
        for r in all { for (i, c) in r.enumerated() { widths[i] = max(widths[i], c.count) } }
        var out = ""
        for (ri, r) in all.enumerated() {
            var cells: [String] = []
            for (i, c) in r.enumerated() {
                let pad = i == r.count - 1 ? "" : String(repeating: " ", count: widths[i] - c.count)
                let text = ri > 0 && c.contains(where: { $0 != " " }) ? paint?(c, i) ?? c : c
                cells.append(text + pad)
            }
            var l = cells.joined(separator: "  ")
            while l.hasSuffix(" ") { l.removeLast() }
            if ri == 0 && bold { l = "\u{1B}[1m\(l)\u{1B}[0m" }
            out += l + "\n"
        }
        return out
    }

    /// `s` without anything a terminal would act on: C0 controls other than tab and
    /// newline, DEL, C1 controls, and whole escape sequences (CSI `ESC [ … final`, OSC /
    /// DCS / SOS / PM / APC strings up to BEL or ST, two-character escapes; their 8-bit C1
    /// forms too). An unterminated string sequence is dropped to the end.
    public static func terminalSafe(_ s: String) -> String {
        func control(_ v: UInt32) -> Bool { (v < 0x20 && v != 0x09 && v != 0x0A) || (v >= 0x7F && v <= 0x9F) }
        guard s.unicodeScalars.contains(where: { control($0.value) }) else { return s }
        let u = Array(s.unicodeScalars)
        var out = String.UnicodeScalarView()
        var i = 0
        /// Skips a CSI body from `j`: parameters/intermediates 0x20–0x3F, then a final byte.
        func skipCSI(_ j: Int) -> Int {
            var j = j
            while j < u.count, (0x20...0x3F).contains(u[j].value) { j += 1 }
            if j < u.count, (0x40...0x7E).contains(u[j].value) { j += 1 }
            return j
        }
        /// Skips a string sequence body up to and including BEL, ESC \ or C1 ST.
        func skipString(_ j: Int) -> Int {
            var j = j
            while j < u.count {
                let v = u[j].value
                if v == 0x07 || v == 0x9C { return j + 1 }
                if v == 0x1B { return j + 1 < u.count && u[j + 1] == "\\" ? j + 2 : j + 1 }
                j += 1
            }
            return j
        }
        while i < u.count {
            let v = u[i].value
            guard control(v) else { out.append(u[i]); i += 1; continue }
            switch v {
            case 0x1B:
                guard i + 1 < u.count else { i += 1; continue }
                let n = u[i + 1].value
                switch n {
                case 0x5B: i = skipCSI(i + 2)                                   // ESC [
                case 0x5D, 0x50, 0x58, 0x5E, 0x5F: i = skipString(i + 2)        // ESC ] P X ^ _
                case 0x20...0x2F:                                               // ESC intermediates final
                    var j = i + 1
                    while j < u.count, (0x20...0x2F).contains(u[j].value) { j += 1 }
                    if j < u.count, (0x30...0x7E).contains(u[j].value) { j += 1 }
                    i = j
                case 0x30...0x7E: i += 2                                        // ESC 7, ESC c, ...
                default: i += 1
                }
            case 0x9B: i = skipCSI(i + 1)
            case 0x9D, 0x90, 0x98, 0x9E, 0x9F: i = skipString(i + 1)
            default: i += 1
            }
        }
        return String(out)
    }
}

/// What commands read from stdin (tests give their own).
public struct Input: Sendable {
    public var isTTY: Bool
    /// Reads all of stdin (at most 64 KiB).
    public var readAll: @Sendable () -> String
    /// Reads one line (without its newline); nil at end of input.
    public var readLine: @Sendable () -> String?

    public init(isTTY: Bool, readAll: @escaping @Sendable () -> String, readLine: @escaping @Sendable () -> String?) {
        self.isTTY = isTTY
        self.readAll = readAll
        self.readLine = readLine
    }

    public static var standard: Input {
        Input(
            isTTY: isatty(0) == 1,
            readAll: {
                var out = [UInt8]()
                var buf = [UInt8](repeating: 0, count: 4096)
                while out.count < 64 * 1024 {
                    let n = buf.withUnsafeMutableBytes { Glibc.read(0, $0.baseAddress!, $0.count) }
                    if n < 0 && errno == EINTR { continue }
                    if n <= 0 { break }
                    out.append(contentsOf: buf[0..<n])
                }
                return String(decoding: out, as: UTF8.self)
            },
            readLine: { Swift.readLine(strippingNewline: true) }
        )
    }
}
