import FoundationEssentials
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

/// `daemon.state.json` (SPEC §2.2), mode 0600.
public struct DaemonStateFile: Sendable, Equatable {
    public var pid: Int32
    public var httpPort: Int
    public var controlToken: String
    /// ISO-8601.
    public var startTime: String
    public var startedWithCliVersion: String
    /// ISO-8601.
    public var lastHeartbeat: String
    public var daemonLogPath: String
    public var profile: String

    public init(pid: Int32, httpPort: Int, controlToken: String, startTime: String, startedWithCliVersion: String,
                lastHeartbeat: String, daemonLogPath: String, profile: String) {
        self.pid = pid
        self.httpPort = httpPort
        self.controlToken = controlToken
        self.startTime = startTime
        self.startedWithCliVersion = startedWithCliVersion
        self.lastHeartbeat = lastHeartbeat
        self.daemonLogPath = daemonLogPath
        self.profile = profile
    }

    public var json: JSON {
        [
            "pid": .int(Int(pid)), "httpPort": .int(httpPort), "controlToken": .string(controlToken),
            "startTime": .string(startTime), "startedWithCliVersion": .string(startedWithCliVersion),
            "lastHeartbeat": .string(lastHeartbeat), "daemonLogPath": .string(daemonLogPath), "profile": .string(profile),
        ]
    }

    public init?(json: JSON) {
        guard let pid = json["pid"]?.int, pid > 0, pid <= Int(Int32.max), let port = json["httpPort"]?.int,
              let token = json["controlToken"]?.string else { return nil }
        self.pid = Int32(pid)
        self.httpPort = port
        self.controlToken = token
        self.startTime = json["startTime"]?.string ?? ""
        self.startedWithCliVersion = json["startedWithCliVersion"]?.string ?? ""
        self.lastHeartbeat = json["lastHeartbeat"]?.string ?? ""
        self.daemonLogPath = json["daemonLogPath"]?.string ?? ""
        self.profile = json["profile"]?.string ?? ""
    }

    public enum ReadResult: Sendable, Equatable {
        case missing
        case corrupt(String)
        case ok(DaemonStateFile)
    }

    public static func read(_ path: String) -> ReadResult {
        do {
            guard let j = try FileIO.readJSON(path, noFollow: true) else { return .missing }
            guard let s = DaemonStateFile(json: j) else { return .corrupt("missing or wrongly typed fields") }
            return .ok(s)
        } catch let e as HappyError {
            return .corrupt(e.what)
        } catch {
            return .corrupt("\(error)")
        }
    }

    public func write(to path: String) throws { try FileIO.writeJSON(json, to: path) }

    /// ≥ 128 random bits from /dev/urandom, hex (256 bits).
    public static func newControlToken() -> String {
        var bytes = [UInt8](repeating: 0, count: 32)
        let fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC)
        var got = 0
        if fd >= 0 {
            while got < bytes.count {
                let n = bytes.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress! + got, $0.count - got) }
                if n <= 0 { if n < 0 && errno == EINTR { continue }; break }
                got += n
            }
            close(fd)
        }
        if got < bytes.count {
            var g = SystemRandomNumberGenerator()
            for i in 0..<bytes.count { bytes[i] = UInt8.random(in: 0...255, using: &g) }
        }
        let hex = Array("0123456789abcdef")
        var s = ""
        s.reserveCapacity(64)
        for b in bytes { s.append(hex[Int(b >> 4)]); s.append(hex[Int(b & 15)]) }
        return s
    }
}
