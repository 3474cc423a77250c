// HTTPMessageParser (Net/HTTPCodec.swift), both kinds, fed in pieces the way the
// control server (requests) and the HTTP/WebSocket clients (responses) feed it.

/// Request side, as ControlServer drives it: append, peekHead, nextRequest until nil.
func fuzzHTTPRequest(_ data: [UInt8]) {
    // Small limits so the size checks are reachable with short inputs.
    var p = HTTPMessageParser(kind: .request, maxHeaderBytes: 512, maxBodyBytes: 1024)
    outer: for piece in fuzzPieces(data) {
        p.append(Array(piece))
        var guardCount = 0
        while guardCount < 64 {
            guardCount += 1
            do {
                _ = try p.peekHead()
                guard let r = try p.nextRequest() else { break }
                _ = r.serialized()
                _ = r.headers["Content-Length"]
            } catch {
                break outer  // the server answers 4xx and closes
            }
        }
    }
    _ = p.bufferedByteCount
    _ = p.isInsideMessage
}

/// Response side: HTTP client (nextResponse with EOF at the end) and the upgrade path
/// (nextResponseHead + takeRemainingBytes), chosen by the low bit of the first byte.
func fuzzHTTPResponse(_ data: [UInt8]) {
    guard let mode = data.first else { return }
    var p = HTTPMessageParser(kind: .response, maxHeaderBytes: 512, maxBodyBytes: 1024)
    p.expectNoBody = mode & 2 != 0
    let pieces = fuzzPieces(data)
    for (n, piece) in pieces.enumerated() {
        p.append(Array(piece))
        let last = n == pieces.count - 1
        var guardCount = 0
        while guardCount < 64 {
            guardCount += 1
            do {
                if mode & 1 == 1 {
                    guard let r = try p.nextResponseHead() else { break }
                    _ = r.headers["Upgrade"]
                    _ = p.takeRemainingBytes()  // discarded on purpose: the miscompile regression (README)
                } else {
                    guard let r = try p.nextResponse(eof: last) else { break }
                    _ = r.serialized()
                }
            } catch {
                return
            }
        }
    }
}
