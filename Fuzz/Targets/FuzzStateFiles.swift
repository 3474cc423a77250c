// On-disk readers: settings.json (Config/SettingsStore.swift), daemon.state.json
// (Daemon/DaemonStateFile.swift), sessions/ID/session.json (Sessions/SessionRecordStore.swift).
// The input is written to a file in a tmpfs scratch folder and read back the way the
// product reads it.

func fuzzSettings(_ data: [UInt8]) {
    let home = HomeLayout(root: fuzzScratch)
    fuzzWriteFile(home.settings, data)
    let store = SettingsStore(home: home)
    _ = try? store.read()
    _ = try? store.machineId()
}

func fuzzDaemonState(_ data: [UInt8]) {
    let path = fuzzScratch + "/daemon.state.json"
    fuzzWriteFile(path, data)
    if case .ok(let s) = DaemonStateFile.read(path) {
        // What we read must survive our own write/read cycle.
        guard DaemonStateFile(json: s.json) == s else { fatalError("daemon state does not round-trip") }
    }
}

func fuzzSessionRecord(_ data: [UInt8]) {
    let path = fuzzScratch + "/session.json"
    fuzzWriteFile(path, data)
    guard let j = try? FileIO.readJSON(path, noFollow: true), let r = SessionRecord(persisted: j) else { return }
    guard let again = SessionRecord(persisted: r.persistedJSON) else { fatalError("session record does not round-trip") }
    _ = again.json.serialized()
}
