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

/// A writer that fails with ENOSPC once `capacity` bytes were written (a full disk).
final class FullDisk: @unchecked Sendable {
    private let lock = NSLock()
    private var left: Int
    init(capacity: Int) { left = capacity }
    func free(_ n: Int) { lock.lock(); left += n; lock.unlock() }
    func write(_ fd: Int32, _ p: UnsafeRawPointer, _ n: Int) -> Int {
        lock.lock(); defer { lock.unlock() }
        if left <= 0 { errno = ENOSPC; return -1 }
        let k = min(n, left)
        left -= k
        return Glibc.write(fd, p, k)
    }
}

@Suite struct RotatingLogSinkFullDiskTests {
    /// On a full disk nothing is written, so nothing may count towards rotation: the old
    /// sink counted every line as written, rotated again and again, and its retention
    /// deleted the older logs while the new ones stayed empty.
    @Test func fullDiskNeitherRotatesNorDeletesOldLogs() throws {
        let dir = makeTempHome("logs"); defer { removeTree(dir) }
        for i in 0..<4 {
            let p = dir + "/2020-01-01-00-00-0\(i)-pid-1-daemon.log"
            try FileIO.atomicWrite("old \(i)\n", to: p)
            var times = [timespec(tv_sec: 1_600_000_000 + i, tv_nsec: 0), timespec(tv_sec: 1_600_000_000 + i, tv_nsec: 0)]
            utimensat(AT_FDCWD, p, &times, 0)
        }
        let disk = FullDisk(capacity: 1500)
        let clock = FakeClock(Date(timeIntervalSince1970: 1_800_000_000))
        let sink = try RotatingLogSink(directory: dir, maxBytes: 2048, maxFiles: 5, pid: 7, now: { clock.now() },
                                       write: { disk.write($0, $1, $2) })
        let first = sink.path
        for _ in 0..<300 { sink.write(level: .info, component: "t", message: String(repeating: "z", count: 100)) }
        #expect(sink.path == first)  // no rotation: only ~1.5 KB reached the file
        for i in 0..<4 { #expect(FileIO.exists(dir + "/2020-01-01-00-00-0\(i)-pid-1-daemon.log"), "old log \(i) deleted") }
        #expect(sink.lostBytes > 30_000)
        let written = try #require(try FileIO.read(first)).count
        #expect(written == 1500)
        // Space again: the loss is said once, then logging and rotation go on.
        disk.free(1 << 20)
        sink.write(level: .info, component: "t", message: "back")
        let text = String(decoding: try #require(try FileIO.read(first)), as: UTF8.self)
        #expect(text.contains("bytes of log lines were lost (disk full or write error)") && text.hasSuffix("[t] back\n"))
        #expect(sink.lostBytes == 0)
    }

    @Test func plantedSymlinkAtTheNextNameIsNotFollowed() throws {
        let dir = makeTempHome("logs"); defer { removeTree(dir) }
        let clock = FakeClock(Date(timeIntervalSince1970: 1_800_000_000))
        // A dangling link where the sink's next file will be: opening it with O_CREAT
        // would create (and then write) the file it points at.
        let target = dir + "-planted-\(UInt32.random(in: 0...UInt32.max))"
        defer { unlink(target) }
        let name0 = RotatingLogSink.fileName(date: clock.now(), pid: 3)
        #expect(symlink(target, dir + "/" + name0) == 0)
        let sink = try RotatingLogSink(directory: dir, maxBytes: 1 << 20, maxFiles: 10, pid: 3, now: { clock.now() })
        sink.write(level: .info, component: "t", message: "hello")
        #expect(sink.path != dir + "/" + name0)
        #expect(!FileIO.exists(target), "the log went through the planted link")
        #expect(FileIO.mode(sink.path) == 0o600)
        #expect(String(decoding: try #require(try FileIO.read(sink.path)), as: UTF8.self).hasSuffix("[t] hello\n"))
    }
}

final class RotationRecorder: @unchecked Sendable {
    private let lock = NSLock()
    private var _paths: [String] = []
    func add(_ p: String) { lock.lock(); _paths.append(p); lock.unlock() }
    var paths: [String] { lock.lock(); defer { lock.unlock() }; return _paths }
}
