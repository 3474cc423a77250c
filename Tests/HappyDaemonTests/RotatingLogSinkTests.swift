import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif
@testable import HappyCore
@testable import HappyCrypto
@testable import HappyNet
@testable import HappyRealtime
@testable import HappyConfig
@testable import HappyServerAPI
@testable import HappySessions
@testable import HappySync
@testable import HappyDaemon
@testable import HappyTestSupport

final class FakeClock: @unchecked Sendable {
    private let lock = NSLock()
    private var t: Date
    init(_ t: Date) { self.t = t }
    func now() -> Date { lock.lock(); defer { lock.unlock() }; return t }
    func advance(_ s: Double) { lock.lock(); t = t.addingTimeInterval(s); lock.unlock() }
}

@Suite struct RotatingLogSinkTests {
    static var lineRegex: Regex<(Substring, Substring)> { #/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z (DEBUG|INFO|WARN|ERROR) \[[^\]]+\] .*$/# }

    @Test func fileNameModeAndLineFormat() throws {
        let dir = makeTempHome("logs"); defer { removeTree(dir) }
        let sink = try RotatingLogSink(directory: dir, maxBytes: 1 << 20, maxFiles: 10, pid: 777)
        sink.write(level: .info, component: "daemon", message: "hello")
        sink.write(level: .warn, component: "control", message: "two\nlines")
        let name = (sink.path as NSString).lastPathComponent
        #expect(name.wholeMatch(of: #/\d{4}-\d{2}-\d{2}-\d{2}-\d{2}-\d{2}-pid-777-daemon\.log/#) != nil)
        #expect(FileIO.mode(sink.path) == 0o600)
        let lines = String(decoding: try #require(try FileIO.read(sink.path)), as: UTF8.self).split(separator: "\n")
        #expect(lines.count == 2)
        for l in lines { #expect(String(l).wholeMatch(of: Self.lineRegex) != nil, "\(l)") }
        #expect(lines[0].hasSuffix(" INFO [daemon] hello"))
    }

    @Test func rotatesToNextFreeSecondAtTheSizeLimit() throws {
        let dir = makeTempHome("logs"); defer { removeTree(dir) }
        let clock = FakeClock(Date(timeIntervalSince1970: 1_800_000_000))
        let sink = try RotatingLogSink(directory: dir, maxBytes: 4096, maxFiles: 10, pid: 9, now: { clock.now() })
        let first = sink.path
        let rotated = RotationRecorder()
        sink.setOnRotate { rotated.add($0) }
        let msg = String(repeating: "x", count: 100)
        for _ in 0..<45 { sink.write(level: .info, component: "t", message: msg) }  // > 4096 bytes
        #expect(sink.path != first)
        #expect(rotated.paths == [sink.path])
        // Same clock second → the next free second.
        #expect((sink.path as NSString).lastPathComponent == RotatingLogSink.fileName(date: clock.now().addingTimeInterval(1), pid: 9))
        let size = try #require(try FileIO.read(first)).count
        #expect(size >= 4096 && size < 4096 + 200)
        for p in [first, sink.path] {
            for l in String(decoding: try #require(try FileIO.read(p)), as: UTF8.self).split(separator: "\n") {
                #expect(String(l).wholeMatch(of: Self.lineRegex) != nil)
            }
        }
    }

    @Test func retentionAtStartAndAtRotation() throws {
        let dir = makeTempHome("logs"); defer { removeTree(dir) }
        // 12 older logs + an unrelated file.
        for i in 0..<12 {
            let p = dir + "/2020-01-01-00-00-\(i < 10 ? "0" : "")\(i)-pid-1-daemon.log"
            try FileIO.atomicWrite("old\n", to: p)
            var times = [timespec(tv_sec: 1_600_000_000 + i, tv_nsec: 0), timespec(tv_sec: 1_600_000_000 + i, tv_nsec: 0)]
            utimensat(AT_FDCWD, p, &times, 0)
        }
        try FileIO.atomicWrite("x", to: dir + "/daemon-stdio.log")
        let sink = try RotatingLogSink(directory: dir, maxBytes: 2048, maxFiles: 10, pid: 5)
        var files = RotatingLogSink.logFiles(in: dir)
        #expect(files.count == 10)
        #expect(files.first?.path == sink.path)
        #expect(!files.contains { $0.path.hasSuffix("-00-00-00-pid-1-daemon.log") })
        #expect(!files.contains { $0.path.hasSuffix("-00-00-02-pid-1-daemon.log") })
        #expect(FileIO.exists(dir + "/daemon-stdio.log"))
        // Rotations keep the count at 10.
        for _ in 0..<200 { sink.write(level: .info, component: "t", message: String(repeating: "y", count: 200)) }
        files = RotatingLogSink.logFiles(in: dir)
        #expect(files.count == 10)
        #expect(files.contains { $0.path == sink.path })
        #expect(!files.contains { $0.path.contains("pid-1-") })
    }
}

final class RotationRecorder: @unchecked Sendable {
    private let lock = NSLock()
    private var _paths: [String] = []
    func add(_ p: String) { lock.lock(); _paths.append(p); lock.unlock() }
    var paths: [String] { lock.lock(); defer { lock.unlock() }; return _paths }
}
