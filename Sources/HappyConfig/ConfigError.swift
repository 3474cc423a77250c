import HappyCore
public enum ConfigError: HappyError, Equatable {
    /// Exit 2: lists the available profiles.
    case unknownProfile(name: String, available: [String])
    case profileUnreadable(path: String, reason: String)
    case profileNotUTF8(path: String)
    /// A wrong type / invalid value in a profile file: names the key and the expected type.
    case wrongType(file: String, line: Int, column: Int, key: String, expected: String, got: String)
    /// An invalid value from the command line (exit 2) or the environment (exit 1).
    case invalidSetting(key: String, value: String, expected: String, from: String, usage: Bool)
    case homeNotWritable(path: String)
    /// The home folder exists and belongs to another (non-root) user.
    case homeOwnedByAnotherUser(path: String, owner: UInt32, user: UInt32)
    /// `${VAR}` in a profile `env` value (or a spawn request) with VAR unset.
    case unresolvedVariable(String)

    public var what: String {
        switch self {
        case .unknownProfile(let n, _): return "unknown profile '\(n)'"
        case .profileUnreadable(let p, let r): return "cannot read profile \(p): \(r)"
        case .profileNotUTF8(let p): return "profile \(p) is not valid UTF-8 text"
        case .wrongType(let f, let l, let c, let k, let e, let g):
            return "\(f):\(l):\(c): \(k) must be \(e) (got \(g))"
        case .invalidSetting(let k, let v, let e, let from, _): return "invalid \(k) '\(v)' from \(from): expected \(e)"
        case .homeNotWritable(let p): return "home directory \(p) is not writable"
        case .homeOwnedByAnotherUser(let p, let o, let u):
            return "home directory \(p) belongs to another user (uid \(o), this is uid \(u)); refusing to use it"
        case .unresolvedVariable(let v): return "environment variable \(v) is not set in the daemon's environment"
        }
    }

    public var hint: String? {
        switch self {
        case .unknownProfile(_, let a): return "available profiles: \(a.joined(separator: ", "))"
        case .profileUnreadable: return "make it a readable file, or remove it to use the built-in profile"
        case .profileNotUTF8: return "save the file as UTF-8"
        case .wrongType: return "fix the value in the profile file"
        case .invalidSetting(_, _, _, let from, _): return "fix \(from)"
        case .homeNotWritable: return "fix its permissions (chmod u+rwx) or choose another --home-dir / HAPPY_HOME_DIR"
        case .homeOwnedByAnotherUser: return "choose a folder of your own (--home-dir / HAPPY_HOME_DIR), or have its owner hand it over (chown)"
        case .unresolvedVariable: return "set it before starting the daemon or use ${VAR:-default}"
        }
    }

    public var exitCode: Int32 {
        switch self {
        case .unknownProfile: return 2
        case .invalidSetting(_, _, _, _, let usage): return usage ? 2 : 1
        default: return 1
        }
    }
}
