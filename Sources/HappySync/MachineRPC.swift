import FoundationEssentials
import HappyCore
import HappySessions

/// The machine-scoped RPC methods (SPEC §4.4), registered as `<machineId>:<name>`.
public enum MachineRPC {
    /// `home`: the user's home folder (`~` in a spawn directory). `tools`: the file and
    /// shell methods (`bash`, `readFile`, ...), confined to `rpc.roots`.
    public static func methods(sessions: SessionService, sessionSync: SessionSyncManager?, home: String,
                               requestShutdown: @escaping @Sendable (ShutdownSource, Bool) -> Void,
                               tools: [RPCMethod] = []) -> [RPCMethod] {
        [
            RPCMethod("spawn-happy-session", summary: { $0["directory"]?.string ?? "" }) { params in
                await spawn(params, sessions: sessions, sessionSync: sessionSync, home: home)
            },
            RPCMethod("resume-happy-session", summary: { $0["sessionId"]?.string ?? "" }) { params in
                guard let sync = sessionSync else { return SessionSyncManager.errorAnswer(syncOff) }
                return await sync.resumeForApp(params)
            },
            RPCMethod("stop-session", summary: { $0["sessionId"]?.string ?? "" }) { params in
                await stopSession(params, sessions: sessions)
            },
            RPCMethod("stop-daemon") { _ in
                // The sessions keep running: the next daemon adopts them (SPEC §4.4).
                RPCResult(["message": "Daemon stop request acknowledged, starting shutdown sequence..."]) {
                    requestShutdown(.mobileApp, true)
                }
            },
        ] + tools
    }

    static let syncOff = "sessions are not mirrored to the server on this machine (sessions.sync is false in the profile)"

    /// `spawn-happy-session`: `{type: "success", sessionId}` (the server session id),
    /// `{type: "requestToApproveDirectoryCreation", directory}`, or `{type: "error",
    /// errorMessage}` for every failure.
    static func spawn(_ params: JSON, sessions: SessionService, sessionSync: SessionSyncManager?, home: String) async -> RPCResult {
        let req: SpawnRequest
        do {
            req = try SpawnRequest.parse(params, origin: .phone, home: home)
        } catch {
            return SessionSyncManager.errorAnswer(error.what)
        }
        if !FileIO.isDirectory(req.directory) && !req.createDirectory {
            if FileIO.exists(req.directory) {
                return SessionSyncManager.errorAnswer("'\(req.directory)' exists and is not a directory")
            }
            return RPCResult(["type": "requestToApproveDirectoryCreation", "directory": .string(req.directory)])
        }
        guard let sync = sessionSync else { return SessionSyncManager.errorAnswer(syncOff) }
        return await sync.spawnForApp(req)
    }

    /// `stop-session {sessionId}` (local or server id, or `PID-<pid>`).
    static func stopSession(_ params: JSON, sessions: SessionService) async -> RPCResult {
        guard var id = params["sessionId"]?.string, !id.isEmpty else { return .error("Session ID is required", outcome: .refused) }
        if id.hasPrefix("PID-"), let pid = Int32(id.dropFirst(4)) {
            guard let rec = await sessions.list(includeFinished: false).first(where: { $0.pid == pid }) else {
                return .error("Session not found or failed to stop")
            }
            id = rec.id
        }
        do {
            _ = try await sessions.stop(id, reason: .requested)
            return RPCResult(["message": "Session stopped"])
        } catch SessionError.notFound, SessionError.notRunning {
            return .error("Session not found or failed to stop")
        } catch {
            return .error(errorWhat(error))
        }
    }
}
