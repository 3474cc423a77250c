// JSON parser (Support/JSON.swift): parse, and when it parses, the serializer must
// round-trip to an equal value.
func fuzzJSON(_ data: [UInt8]) {
    guard let v = try? JSON.parse(data) else { return }
    let text = v.serialized()
    guard let again = try? JSON.parse(text) else { fatalError("serialized JSON does not parse: \(text)") }
    if !jsonSame(v, again) { fatalError("JSON round trip changed the value") }
    _ = v.serialized(pretty: true)
}

/// Equality that treats NaN-free numbers exactly (JSON cannot carry NaN anyway).
func jsonSame(_ a: JSON, _ b: JSON) -> Bool { a == b }
