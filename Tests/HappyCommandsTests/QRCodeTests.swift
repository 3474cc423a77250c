import Foundation
import Testing
@testable import HappyCore
@testable import HappyCrypto
@testable import HappyNet
@testable import HappyRealtime
@testable import HappyConfig
@testable import HappyServerAPI
@testable import HappySessions
@testable import HappySync
@testable import HappyDaemon
@testable import HappyCommands
@testable import HappyTestSupport

/// Decodes an image with Debian's `zbarimg` (zbar-tools), an independent decoder.
func zbarDecode(pbm: String) async throws -> String {
    let zbar = ["/usr/bin/zbarimg", "/usr/local/bin/zbarimg"].first { FileManager.default.isExecutableFile(atPath: $0) }
    let exe = try #require(zbar, "zbarimg not found: apt-get install zbar-tools")
    let path = NSTemporaryDirectory() + "happy-qr-\(UInt64.random(in: 0...UInt64.max)).pbm"
    try pbm.write(toFile: path, atomically: true, encoding: .utf8)
    defer { unlink(path) }
    var s = try await runTool([exe, "--raw", "-q", "-Sdisable", "-Sqrcode.enable", "-Sbinary", path]).output
    if s.hasSuffix("\n") { s.removeLast() }
    return s
}

@Suite struct QRCodeTests {
    static let link = "happy://terminal?" + String(repeating: "Ab-_9", count: 8) + "xyz"

    @Test(arguments: [1, 14, 30, 54, 80, 120, 154, 200, 271, 330, 600])
    func zbarRoundTrip(length: Int) async throws {
        let chars = Array("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_?:/#=")
        var rng = SystemRandomNumberGenerator()
        let text = String((0..<length).map { _ in chars.randomElement(using: &rng)! })
        for ecl in [QRCode.ErrorCorrection.low, .medium] {
            let qr = try QRCode(text: text, errorCorrection: ecl)
            #expect(qr.size == qr.version * 4 + 17)
            #expect(try await zbarDecode(pbm: qr.pbm()) == text, "version \(qr.version) \(ecl)")
        }
    }

    @Test func versionGrowsWithLength() throws {
        // Byte-mode capacities at level M: v1 14, v2 26, v5 84, v10 213 bytes.
        #expect(try QRCode(text: String(repeating: "a", count: 14)).version == 1)
        #expect(try QRCode(text: String(repeating: "a", count: 15)).version == 2)
        #expect(try QRCode(text: String(repeating: "a", count: 84)).version == 5)
        #expect(try QRCode(text: String(repeating: "a", count: 85)).version == 6)
        #expect(try QRCode(text: String(repeating: "a", count: 213)).version == 10)
        #expect(try QRCode(text: String(repeating: "a", count: 17), errorCorrection: .low).version == 1)
        #expect(throws: QRCode.EncodeError.self) { try QRCode(text: String(repeating: "a", count: 3000)) }
    }

    @Test func everyMaskDecodes() async throws {
        for m in 0..<8 {
            let qr = try QRCode(bytes: Array(Self.link.utf8), forcedMask: m)
            #expect(qr.mask == m)
            #expect(try await zbarDecode(pbm: qr.pbm()) == Self.link, "mask \(m)")
        }
    }

    @Test func maskChosenByPenalty() throws {
        // The chosen mask has the lowest penalty of the eight.
        let qr = try QRCode(text: Self.link)
        var best = Int.max, bestMask = -1
        for m in 0..<8 {
            let q = try QRCode(bytes: Array(Self.link.utf8), forcedMask: m)
            var mat = Matrix(version: q.version)
            mat.modules = q.modules
            let p = mat.penalty()
            if p < best { best = p; bestMask = m }
        }
        #expect(qr.mask == bestMask)
    }

    /// The half-block terminal drawing carries the same modules: parse it back
    /// into pixels and decode it.
    @Test(arguments: [false, true])
    func halfBlockRenderingDecodes(darkInk: Bool) async throws {
        let qr = try QRCode(text: Self.link)
        let text = qr.renderHalfBlocks(quietZone: 2, darkInk: darkInk)
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).dropLast()
        let width = qr.size + 4
        #expect(lines.count == (width + 1) / 2)
        var rows = [[Bool]]()  // true = dark
        for line in lines {
            let cs = Array(line)
            #expect(cs.count == width)
            var top = [Bool](), bottom = [Bool]()
            for c in cs {
                let (t, b): (Bool, Bool)
                switch c {
                case "█": (t, b) = (true, true)
                case "▀": (t, b) = (true, false)
                case "▄": (t, b) = (false, true)
                default: (t, b) = (false, false)
                }
                top.append(darkInk ? t : !t)
                bottom.append(darkInk ? b : !b)
            }
            rows.append(top)
            rows.append(bottom)
        }
        rows = Array(rows.prefix(width))
        // Rebuild a PBM with a wider margin from the parsed modules.
        let scale = 4, margin = 2
        let n = (width + 2 * margin) * scale
        var pbm = "P1\n\(n) \(n)\n"
        for py in 0..<n {
            var line = ""
            for px in 0..<n {
                let x = px / scale - margin, y = py / scale - margin
                let dark = x >= 0 && y >= 0 && x < width && y < width && rows[y][x]
                line += dark ? "1 " : "0 "
            }
            pbm += line + "\n"
        }
        #expect(try await zbarDecode(pbm: pbm) == Self.link)
    }
}
