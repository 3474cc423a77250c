import HappyCore

/// Errors of the Crypto module. Inputs that come from outside (a server, a file) and
/// cannot be used make an operation throw one of these; they never trap.
public enum CryptoError: HappyError, Equatable {
    /// An X25519 public key that is all-zero, another low-order point, or otherwise gives
    /// an all-zero shared secret: nothing encrypted to it would be secret.
    case unusablePublicKey
    /// An input of the wrong length (key, nonce, public key).
    case wrongLength(what: String, expected: Int, got: Int)

    public var what: String {
        switch self {
        case .unusablePublicKey:
            return "the public key is not a usable X25519 key (all-zero or a low-order point)"
        case .wrongLength(let w, let e, let g): return "\(w) must be \(e) bytes (got \(g))"
        }
    }
}
