import Testing
@testable import HappyCore
@testable import HappyTestSupport

@Suite struct JSONTests {
    @Test func roundTrip() throws {
        let text = #"{"a":[1,2.5,-3e2,true,false,null],"b":"x\"\\\n\u00e9\ud83d\ude00","c":{}}"#
        let v = try JSON.parse(text)
        #expect(v["a"]?.array?.count == 6)
        #expect(v["a"]?.array?[2].int == -300)
        #expect(v["b"]?.string == "x\"\\\n\u{e9}😀")
        #expect(try JSON.parse(v.serialized()) == v)
        #expect(JSON.int(1724520000000).serialized() == "1724520000000")
    }

    @Test(arguments: ["", "{", "[1,]", "{\"a\" 1}", "tru", "01", "1.", "\"\\x\"", "\"a", "[1] x", "-"])
    func rejectsMalformed(_ text: String) {
        #expect(throws: JSONParseError.self) { try JSON.parse(text) }
    }

    @Test func depthIsBounded() {
        let deep = String(repeating: "[", count: 10_000)
        #expect(throws: JSONParseError.self) { try JSON.parse(deep) }
    }
}

@Suite struct SupportTests {
    @Test func isoTime() {
        #expect(ISOTime.string(epochMs: 1724520000123) == "2024-08-24T17:20:00.123Z")
        #expect(ISOTime.parse("2024-08-24T17:20:00.123Z") == 1724520000123)
    }

    @Test func atomicWriteMode() throws {
        let dir = "/tmp/happy-support-\(UInt32.random(in: 0...UInt32.max))"
        try FileIO.ensureDirectory(dir)
        defer { _ = try? FileManagerShim.removeTree(dir) }
        #expect(FileIO.mode(dir) == 0o700)
        try FileIO.writeJSON(["a": 1], to: dir + "/x.json")
        #expect(FileIO.mode(dir + "/x.json") == 0o600)
        #expect(try FileIO.readJSON(dir + "/x.json")?["a"]?.int == 1)
        try FileIO.atomicWrite("{nope", to: dir + "/bad.json")
        #expect(throws: FileIOError.self) { try FileIO.readJSON(dir + "/bad.json") }
    }
}
