import HappyCore
import HappyCrypto
import HappyNet
import HappyRealtime
import HappyConfig
import HappyServerAPI
import HappySessions
import HappySync
import HappyDaemon
/// A small QR Code (ISO/IEC 18004) encoder: byte mode, error correction level L or
/// M, the smallest version (1…40) that holds the data, all eight masks tried and
/// the one with the lowest penalty score kept. Used to draw the terminal-auth link
/// in the terminal with half-block characters.
public struct QRCode: Sendable, Equatable {
    public enum ErrorCorrection: Sendable, Equatable {
        case low, medium
        /// Format-information bits of the level (ISO 18004 table 12).
        var formatBits: Int { self == .low ? 1 : 0 }
        var tableIndex: Int { self == .low ? 0 : 1 }
    }

    public enum EncodeError: Error, Equatable { case dataTooLong(Int) }

    public let version: Int
    public let size: Int
    public let errorCorrection: ErrorCorrection
    public let mask: Int
    /// `modules[y][x]`, true = dark.
    public let modules: [[Bool]]

    /// Encodes `bytes` in byte mode.
    public init(bytes: [UInt8], errorCorrection: ErrorCorrection = .medium, forcedMask: Int? = nil) throws {
        let ecl = errorCorrection
        var chosen = 0
        var dataBitsNeeded = 0
        for v in 1...40 {
            let countBits = v <= 9 ? 8 : 16
            let needed = 4 + countBits + bytes.count * 8
            if bytes.count < (1 << countBits), needed <= QRCode.dataCodewords(v, ecl) * 8 {
                chosen = v
                dataBitsNeeded = needed
                break
            }
        }
        guard chosen > 0 else { throw EncodeError.dataTooLong(bytes.count) }
        _ = dataBitsNeeded
        let version = chosen

        // Bit stream: mode, count, data, terminator, byte padding, pad codewords.
        var bits = BitBuffer()
        bits.append(0b0100, 4)
        bits.append(bytes.count, version <= 9 ? 8 : 16)
        for b in bytes { bits.append(Int(b), 8) }
        let capacity = QRCode.dataCodewords(version, ecl) * 8
        bits.append(0, min(4, capacity - bits.count))
        bits.append(0, (8 - bits.count % 8) % 8)
        var pad = 0xEC
        while bits.count < capacity {
            bits.append(pad, 8)
            pad ^= 0xEC ^ 0x11
        }
        var codewords = [UInt8](repeating: 0, count: bits.count / 8)
        for (i, bit) in bits.bits.enumerated() where bit {
            codewords[i >> 3] |= UInt8(1 << (7 - (i & 7)))
        }

        var m = Matrix(version: version)
        m.drawFunctionPatterns(ecl: ecl)
        let all = QRCode.addECCAndInterleave(codewords, version: version, ecl: ecl)
        m.drawCodewords(all)

        var bestMask = 0
        if let f = forcedMask {
            bestMask = f & 7
        } else {
            var bestPenalty = Int.max
            for k in 0..<8 {
                var t = m
                t.applyMask(k)
                t.drawFormatBits(ecl: ecl, mask: k)
                let p = t.penalty()
                if p < bestPenalty { bestPenalty = p; bestMask = k }
            }
        }
        m.applyMask(bestMask)
        m.drawFormatBits(ecl: ecl, mask: bestMask)

        self.version = version
        self.size = m.size
        self.errorCorrection = ecl
        self.mask = bestMask
        self.modules = m.modules
    }

    public init(text: String, errorCorrection: ErrorCorrection = .medium) throws {
        try self.init(bytes: Array(text.utf8), errorCorrection: errorCorrection)
    }

    public func isDark(x: Int, y: Int) -> Bool {
        x >= 0 && y >= 0 && x < size && y < size && modules[y][x]
    }

    /// Terminal rendering, two module rows per text line with `▀ ▄ █` and spaces.
    /// By default light modules are drawn (ink) and dark modules are blank, which
    /// reads correctly on the usual light-on-dark terminal; `darkInk` draws the dark
    /// modules instead (for dark-on-light terminals). `quietZone` modules of margin.
    public func renderHalfBlocks(quietZone: Int = 2, darkInk: Bool = false) -> String {
        let n = size + 2 * quietZone
        func ink(_ x: Int, _ y: Int) -> Bool {
            let dark = isDark(x: x - quietZone, y: y - quietZone)
            return darkInk ? dark : !dark
        }
        var out = ""
        var y = 0
        while y < n {
            var line = ""
            for x in 0..<n {
                let top = ink(x, y)
                let bottom = y + 1 < n ? ink(x, y + 1) : false
                switch (top, bottom) {
                case (true, true): line += "█"
                case (true, false): line += "▀"
                case (false, true): line += "▄"
                case (false, false): line += " "
                }
            }
            out += line + "\n"
            y += 2
        }
        return out
    }

    /// Plain PBM (P1) image with `scale` pixels per module, for tests and tools.
    public func pbm(scale: Int = 4, quietZone: Int = 4) -> String {
        let n = (size + 2 * quietZone) * scale
        var out = "P1\n\(n) \(n)\n"
        for py in 0..<n {
            var row = [Character]()
            row.reserveCapacity(n * 2)
            for px in 0..<n {
                let dark = isDark(x: px / scale - quietZone, y: py / scale - quietZone)
                row.append(dark ? "1" : "0")
                row.append(" ")
            }
            out += String(row) + "\n"
        }
        return out
    }

    // MARK: tables (ISO 18004 tables 7 and 9; index 0 unused)

    static let eccPerBlock: [[Int]] = [
        [-1, 7, 10, 15, 20, 26, 18, 20, 24, 30, 18, 20, 24, 26, 30, 22, 24, 28, 30, 28, 28, 28, 28, 30, 30, 26, 28, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30],
        [-1, 10, 16, 26, 18, 24, 16, 18, 22, 22, 26, 30, 22, 22, 24, 24, 28, 28, 26, 26, 26, 26, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28],
    ]
    static let numBlocks: [[Int]] = [
        [-1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 4, 4, 4, 4, 4, 6, 6, 6, 6, 7, 8, 8, 9, 9, 10, 12, 12, 12, 13, 14, 15, 16, 17, 18, 19, 19, 20, 21, 22, 24, 25],
        [-1, 1, 1, 1, 2, 2, 4, 4, 4, 5, 5, 5, 8, 9, 9, 10, 10, 11, 13, 14, 16, 17, 17, 18, 20, 21, 23, 25, 26, 28, 29, 31, 33, 35, 37, 38, 40, 43, 45, 47, 49],
    ]

    static func rawDataModules(_ ver: Int) -> Int {
        var r = (16 * ver + 128) * ver + 64
        if ver >= 2 {
            let na = ver / 7 + 2
            r -= (25 * na - 10) * na - 55
            if ver >= 7 { r -= 36 }
        }
        return r
    }

    static func dataCodewords(_ ver: Int, _ ecl: ErrorCorrection) -> Int {
        rawDataModules(ver) / 8 - eccPerBlock[ecl.tableIndex][ver] * numBlocks[ecl.tableIndex][ver]
    }

    static func alignmentPositions(_ ver: Int) -> [Int] {
        if ver == 1 { return [] }
        let na = ver / 7 + 2
        let size = ver * 4 + 17
        let step = (ver * 8 + na * 3 + 5) / (na * 4 - 4) * 2
        var r = [Int]()
        var pos = size - 7
        for _ in 0..<(na - 1) { r.insert(pos, at: 0); pos -= step }
        r.insert(6, at: 0)
        return r
    }

    // MARK: Reed-Solomon over GF(256), polynomial 0x11D

    static func gfMul(_ x: Int, _ y: Int) -> Int {
        var z = 0
        for i in stride(from: 7, through: 0, by: -1) {
            z = (z << 1) ^ ((z >> 7) * 0x11D)
            z ^= ((y >> i) & 1) * x
        }
        return z
    }

    static func rsDivisor(_ degree: Int) -> [Int] {
        var r = [Int](repeating: 0, count: degree)
        r[degree - 1] = 1
        var root = 1
        for _ in 0..<degree {
            for j in 0..<degree {
                r[j] = gfMul(r[j], root)
                if j + 1 < degree { r[j] ^= r[j + 1] }
            }
            root = gfMul(root, 2)
        }
        return r
    }

    static func rsRemainder(_ data: [UInt8], _ divisor: [Int]) -> [UInt8] {
        var r = [Int](repeating: 0, count: divisor.count)
        for b in data {
            let factor = Int(b) ^ r.removeFirst()
            r.append(0)
            for i in 0..<r.count { r[i] ^= gfMul(divisor[i], factor) }
        }
        return r.map { UInt8($0) }
    }

    static func addECCAndInterleave(_ data: [UInt8], version: Int, ecl: ErrorCorrection) -> [UInt8] {
        let nb = numBlocks[ecl.tableIndex][version]
        let eccLen = eccPerBlock[ecl.tableIndex][version]
        let raw = rawDataModules(version) / 8
        let numShort = nb - raw % nb
        let shortLen = raw / nb
        let divisor = rsDivisor(eccLen)
        var blocks = [[UInt8]]()
        var k = 0
        for i in 0..<nb {
            let len = shortLen - eccLen + (i < numShort ? 0 : 1)
            var dat = Array(data[k..<(k + len)])
            k += len
            let ecc = rsRemainder(dat, divisor)
            if i < numShort { dat.append(0) }
            blocks.append(dat + ecc)
        }
        var out = [UInt8]()
        out.reserveCapacity(raw)
        for i in 0..<blocks[0].count {
            for j in 0..<blocks.count where i != shortLen - eccLen || j >= numShort {
                out.append(blocks[j][i])
            }
        }
        return out
    }
}

struct BitBuffer {
    var bits: [Bool] = []
    var count: Int { bits.count }
    mutating func append(_ value: Int, _ n: Int) {
        guard n > 0 else { return }
        for i in stride(from: n - 1, through: 0, by: -1) { bits.append((value >> i) & 1 == 1) }
    }
}

struct Matrix {
    let version: Int
    let size: Int
    var modules: [[Bool]]
    var isFunction: [[Bool]]

    init(version: Int) {
        self.version = version
        size = version * 4 + 17
        modules = Array(repeating: Array(repeating: false, count: size), count: size)
        isFunction = modules
    }

    mutating func set(_ x: Int, _ y: Int, _ dark: Bool) {
        modules[y][x] = dark
        isFunction[y][x] = true
    }

    mutating func drawFunctionPatterns(ecl: QRCode.ErrorCorrection) {
        for i in 0..<size {
            set(6, i, i % 2 == 0)
            set(i, 6, i % 2 == 0)
        }
        drawFinder(3, 3)
        drawFinder(size - 4, 3)
        drawFinder(3, size - 4)
        let pos = QRCode.alignmentPositions(version)
        let n = pos.count
        for i in 0..<n {
            for j in 0..<n {
                if (i == 0 && j == 0) || (i == 0 && j == n - 1) || (i == n - 1 && j == 0) { continue }
                drawAlignment(pos[i], pos[j])
            }
        }
        drawFormatBits(ecl: ecl, mask: 0)  // reserves the area; redrawn after masking
        drawVersion()
    }

    mutating func drawFinder(_ x: Int, _ y: Int) {
        for dy in -4...4 {
            for dx in -4...4 {
                let d = max(abs(dx), abs(dy))
                let xx = x + dx, yy = y + dy
                if xx >= 0, xx < size, yy >= 0, yy < size { set(xx, yy, d != 2 && d != 4) }
            }
        }
    }

    mutating func drawAlignment(_ x: Int, _ y: Int) {
        for dy in -2...2 {
            for dx in -2...2 { set(x + dx, y + dy, max(abs(dx), abs(dy)) != 1) }
        }
    }

    mutating func drawFormatBits(ecl: QRCode.ErrorCorrection, mask: Int) {
        let data = ecl.formatBits << 3 | mask
        var rem = data
        for _ in 0..<10 { rem = (rem << 1) ^ ((rem >> 9) * 0x537) }
        let bits = (data << 10 | rem) ^ 0x5412
        func bit(_ i: Int) -> Bool { (bits >> i) & 1 == 1 }
        for i in 0...5 { set(8, i, bit(i)) }
        set(8, 7, bit(6))
        set(8, 8, bit(7))
        set(7, 8, bit(8))
        for i in 9..<15 { set(14 - i, 8, bit(i)) }
        for i in 0..<8 { set(size - 1 - i, 8, bit(i)) }
        for i in 8..<15 { set(8, size - 15 + i, bit(i)) }
        set(8, size - 8, true)
    }

    mutating func drawVersion() {
        guard version >= 7 else { return }
        var rem = version
        for _ in 0..<12 { rem = (rem << 1) ^ ((rem >> 11) * 0x1F25) }
        let bits = version << 12 | rem
        for i in 0..<18 {
            let b = (bits >> i) & 1 == 1
            let a = size - 11 + i % 3, c = i / 3
            set(a, c, b)
            set(c, a, b)
        }
    }

    mutating func drawCodewords(_ data: [UInt8]) {
        var i = 0
        let total = data.count * 8
        var right = size - 1
        while right >= 1 {
            if right == 6 { right = 5 }
            for vert in 0..<size {
                for j in 0..<2 {
                    let x = right - j
                    let upward = ((right + 1) & 2) == 0
                    let y = upward ? size - 1 - vert : vert
                    if !isFunction[y][x] && i < total {
                        modules[y][x] = (data[i >> 3] >> (7 - (i & 7))) & 1 == 1
                        i += 1
                    }
                }
            }
            right -= 2
        }
    }

    mutating func applyMask(_ mask: Int) {
        for y in 0..<size {
            for x in 0..<size where !isFunction[y][x] {
                let inv: Bool
                switch mask {
                case 0: inv = (x + y) % 2 == 0
                case 1: inv = y % 2 == 0
                case 2: inv = x % 3 == 0
                case 3: inv = (x + y) % 3 == 0
                case 4: inv = (x / 3 + y / 2) % 2 == 0
                case 5: inv = x * y % 2 + x * y % 3 == 0
                case 6: inv = (x * y % 2 + x * y % 3) % 2 == 0
                default: inv = ((x + y) % 2 + x * y % 3) % 2 == 0
                }
                if inv { modules[y][x].toggle() }
            }
        }
    }

    /// ISO 18004 §7.8.3 penalty: runs, 2×2 blocks, finder-like patterns, balance.
    func penalty() -> Int {
        var p = 0
        func line(_ get: (Int) -> Bool) -> Int {
            var r = 0
            var run = 1
            var cells = [Bool]()
            cells.reserveCapacity(size)
            for i in 0..<size { cells.append(get(i)) }
            for i in 1..<size {
                if cells[i] == cells[i - 1] {
                    run += 1
                } else {
                    if run >= 5 { r += 3 + run - 5 }
                    run = 1
                }
            }
            if run >= 5 { r += 3 + run - 5 }
            // 1:1:3:1:1 with four light modules on one side (outside counts as light).
            let pat: [Bool] = [true, false, true, true, true, false, true]
            for i in -4..<size {
                var match = true
                for k in 0..<7 {
                    let idx = i + 4 + k
                    let v = idx < size ? cells[idx] : false
                    if v != pat[k] { match = false; break }
                }
                if !match { continue }
                func light(_ from: Int, _ to: Int) -> Bool {
                    for j in from..<to where j >= 0 && j < size && cells[j] { return false }
                    return true
                }
                if light(i, i + 4) || light(i + 11, i + 15) { r += 40 }
            }
            return r
        }
        for y in 0..<size { p += line { modules[y][$0] } }
        for x in 0..<size { p += line { modules[$0][x] } }
        for y in 0..<(size - 1) {
            for x in 0..<(size - 1) {
                let c = modules[y][x]
                if c == modules[y][x + 1] && c == modules[y + 1][x] && c == modules[y + 1][x + 1] { p += 3 }
            }
        }
        var dark = 0
        for row in modules { for c in row where c { dark += 1 } }
        let total = size * size
        let k = (abs(dark * 20 - total * 10) + total - 1) / total - 1
        p += max(0, k) * 10
        return p
    }
}
