// Text parsers: Socket.IO packets, YAML profiles, stream-json lines, base64/backup keys.

/// SocketIOPacket.decode (Realtime/SocketIO.swift) plus what handleMessage reads from it.
func fuzzSocketIO(_ data: [UInt8]) {
    let text = String(decoding: data, as: UTF8.self)
    guard let p = try? SocketIOPacket.decode(text) else { return }
    _ = p.data?["message"]?.string ?? p.data?.string
    if let arr = p.data?.array, let name = arr.first?.string { _ = (name, Array(arr.dropFirst()), p.id) }
    // Re-encoding a decoded packet must not crash, and must decode again.
    let again = p.encoded()
    if p.nsp == "/" || !p.nsp.contains(",") { _ = try? SocketIOPacket.decode(again) }
}

/// YAMLReader + profile schema (Config/YAML.swift, Config/Profiles.swift).
func fuzzYAML(_ data: [UInt8]) {
    guard let text = String(validating: data, as: UTF8.self) else { return }
    _ = try? YAMLReader.parse(text, file: "fuzz.yaml")
    _ = try? ProfileSchema.load(name: "fuzz", origin: .file("/tmp/fuzz.yaml"), text: text)
}

/// StreamJSONScanner (Sessions/SessionRecordStore.swift): feed pieces, interpret lines.
func fuzzStreamJSON(_ data: [UInt8]) {
    var s = StreamJSONScanner()
    s.maxLine = 256  // reach the oversize-partial-line path with short inputs
    var lines: [[UInt8]] = []
    for piece in fuzzPieces(data) {
        Array(piece).withUnsafeBytes { s.feed($0, into: &lines) }
    }
    for l in lines { _ = StreamJSONScanner.interpret(l) }
    if !s.pending.isEmpty { _ = StreamJSONScanner.interpret(s.pending) }
}

/// Base64 (all alphabets) and the backup-key format (Crypto/Encoding.swift).
func fuzzBase64(_ data: [UInt8]) {
    let text = String(decoding: data, as: UTF8.self)
    if let b = Base64.decode(text) {
        guard Base64.decode(Base64.encode(b)) == b else { fatalError("base64 round trip") }
    }
    if let b = Base64.decodeURL(text) {
        guard Base64.decodeURL(Base64.encodeURL(b)) == b else { fatalError("base64url round trip") }
    }
    _ = Base64.decodeAny(text)
    if let k = BackupKey.decode(text) {
        guard BackupKey.decode(BackupKey.encode(k)) == k else { fatalError("backup key round trip") }
    }
    // Raw bytes as a secret: encode → decode must round-trip for 32-byte secrets.
    if data.count >= 32 {
        let secret = Array(data.prefix(32))
        guard BackupKey.decode(BackupKey.encode(secret)) == secret else { fatalError("backup key encode/decode") }
    }
}
