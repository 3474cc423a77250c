import Dispatch
#if canImport(Glibc)
import Glibc
#endif
import HappyCore
import HappyCrypto

/// Runs blocking file work on a Dispatch worker, off the cooperative pool.
func offPool<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
    await withCheckedContinuation { (c: CheckedContinuation<T, Never>) in
        DispatchQueue.global(qos: .userInitiated).async { c.resume(returning: body()) }
    }
}

/// The file tools: `readFile`, `writeFile`, `listDirectory`, `getDirectoryTree`.
/// Blocking; `RPCTools` runs them off the cooperative pool.
enum FileTools {
    // MARK: readFile

    static func readFile(_ p: ReadFileParams, _ ctx: ToolContext) -> ReadFileResult {
        let target: ConfinedPath
        switch ctx.confinement().resolve(p.path) {
        case .failure(let f): return .failure(f.message)
        case .success(let c): target = c
        }
        switch readRegularFile(target.path, shown: p.path, limit: ctx.limits.maxFileBytes) {
        case .failure(let m): return .failure(m.text)
        case .success(let bytes): return ReadFileResult(success: true, content: Base64.encode(bytes))
        }
    }

    struct Message: Error { let text: String }

    /// The bytes of a regular file (not followed if it is a symlink), at most `limit`.
    static func readRegularFile(_ path: String, shown: String, limit: Int) -> Result<[UInt8], Message> {
        // O_NONBLOCK: opening a FIFO must not hang; the type is checked right after.
        let fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)
        if fd < 0 { return .failure(Message(text: "\(errnoString()): \(shown)")) }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { return .failure(Message(text: "\(errnoString()): \(shown)")) }
        if (st.st_mode & S_IFMT) == S_IFDIR { return .failure(Message(text: "\(errnoString(EISDIR)): \(shown)")) }
        guard (st.st_mode & S_IFMT) == S_IFREG else { return .failure(Message(text: "not a regular file: \(shown)")) }
        if Int(st.st_size) > limit { return .failure(Message(text: tooLarge(Int(st.st_size), limit))) }
        var out = [UInt8]()
        out.reserveCapacity(Int(st.st_size))
        var chunk = [UInt8](repeating: 0, count: 256 * 1024)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress!, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                return .failure(Message(text: "\(errnoString()): \(shown)"))
            }
            if n == 0 { break }
            out.append(contentsOf: chunk[0..<n])
            if out.count > limit { return .failure(Message(text: tooLarge(out.count, limit))) }
        }
        return .success(out)
    }

    static func tooLarge(_ size: Int, _ limit: Int) -> String {
        "file too large: \(size) bytes (the limit is \(Format.bytes(Int64(limit))))"
    }

    // MARK: writeFile

    static func writeFile(_ p: WriteFileParams, _ ctx: ToolContext) -> WriteFileResult {
        let target: ConfinedPath
        switch ctx.confinement().resolve(p.path) {
        case .failure(let f): return .failure(f.message)
        case .success(let c): target = c
        }
        guard let bytes = Base64.decodeAny(p.content) else { return .failure("content is not valid base64") }
        if bytes.count > ctx.limits.maxFileBytes { return .failure(tooLarge(bytes.count, ctx.limits.maxFileBytes)) }

        var st = stat()
        let exists: Bool
        if lstat(target.path, &st) == 0 {
            exists = true
        } else if errno == ENOENT {
            exists = false
        } else {
            return .failure("\(errnoString()): \(p.path)")
        }

        if let expected = p.expectedHash {
            guard exists else { return .failure("File does not exist but hash was provided") }
            let current: [UInt8]
            switch readRegularFile(target.path, shown: p.path, limit: ctx.limits.maxFileBytes) {
            case .failure(let m): return .failure(m.text)
            case .success(let b): current = b
            }
            let actual = Digest.hex(Digest.sha256(current))
            guard actual == expected.lowercased() else {
                return .failure("File hash mismatch. Expected: \(expected), Actual: \(actual)")
            }
        } else if exists {
            return .failure("File already exists but was expected to be new")
        }

        if let m = atomicReplace(target.path, bytes: bytes, existing: exists ? st : nil, shown: p.path) {
            return .failure(m)
        }
        return WriteFileResult(success: true, hash: Digest.hex(Digest.sha256(bytes)))
    }

    /// Writes `bytes` to a temporary file in the same folder and moves it over `path`. An
    /// existing file's mode (and owner, when we may) is kept; a new file gets 0666 minus
    /// the umask and must still be new when it is linked in (no replace).
    /// Returns an error text, or nil.
    static func atomicReplace(_ path: String, bytes: [UInt8], existing: stat?, shown: String) -> String? {
        let dir = Paths.dirname(path)
        let name = Paths.basename(path)
        // A long name is shortened so the temporary name stays within NAME_MAX.
        let stem = String(decoding: name.utf8.prefix(120), as: UTF8.self)
        let tmp = Paths.join(dir, ".\(stem).happy-\(getpid())-\(String(UInt64.random(in: 0...UInt64.max), radix: 36)).tmp")
        let fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, existing == nil ? 0o666 : 0o600)
        if fd < 0 { return "\(errnoString()): \(shown)" }
        var tmpGone = false  // renamed into place
        defer { if !tmpGone { unlink(tmp) } }
        if let st = existing {
            _ = fchmod(fd, st.st_mode & 0o7777)
            if st.st_uid != geteuid() || st.st_gid != getegid() {
                if fchown(fd, st.st_uid, st.st_gid) == 0 { _ = fchmod(fd, st.st_mode & 0o7777) }
            }
        }
        var off = 0
        while off < bytes.count {
            let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + off, bytes.count - off) }
            if n < 0 {
                if errno == EINTR { continue }
                let r = errnoString()
                close(fd)
                return "\(r): \(shown)"
            }
            off += n
        }
        if fsync(fd) != 0 {
            let r = errnoString()
            close(fd)
            return "\(r): \(shown)"
        }
        close(fd)
        if existing == nil {
            // link(2) fails with EEXIST when the name appeared meanwhile: no replace.
            // The temporary name is removed by the defer once linked.
            if link(tmp, path) != 0 {
                if errno == EEXIST { return "File already exists but was expected to be new" }
                // A file system without hard links.
                if rename(tmp, path) != 0 { return "\(errnoString()): \(shown)" }
                tmpGone = true
            }
        } else if rename(tmp, path) != 0 {
            return "\(errnoString()): \(shown)"
        } else {
            tmpGone = true
        }
        let dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dfd >= 0 { _ = fsync(dfd); close(dfd) }
        return nil
    }

    // MARK: listDirectory

    static func listDirectory(_ p: ListDirectoryParams, _ ctx: ToolContext) -> ListDirectoryResult {
        let target: ConfinedPath
        switch ctx.confinement().resolve(p.path) {
        case .failure(let f): return .failure(f.message)
        case .success(let c): target = c
        }
        let names: [String]
        switch readNames(target.path, limit: Int.max) {
        case .failure(let e): return .failure("\(errnoString(e.code)): \(p.path)")
        case .success(let n): names = n.names
        }
        var entries: [DirectoryEntry] = []
        entries.reserveCapacity(names.count)
        for name in names {
            var st = stat()
            guard lstat(Paths.join(target.path, name), &st) == 0 else {
                entries.append(DirectoryEntry(name: name, type: .other))
                continue
            }
            entries.append(DirectoryEntry(name: name, type: entryType(st), size: Int64(st.st_size),
                                          modified: modifiedMs(st)))
        }
        entries.sort { order(dirA: $0.type == .directory, $0.name, dirB: $1.type == .directory, $1.name) }
        let limit = max(0, ctx.limits.maxListEntries)
        let truncated = entries.count > limit
        if truncated { entries.removeSubrange(limit...) }
        return ListDirectoryResult(success: true, entries: entries, truncated: truncated)
    }

    static func entryType(_ st: stat) -> EntryType {
        switch st.st_mode & S_IFMT {
        case S_IFDIR: return .directory
        case S_IFREG: return .file
        default: return .other
        }
    }

    static func modifiedMs(_ st: stat) -> Int64 {
        Int64(st.st_mtim.tv_sec) * 1000 + Int64(st.st_mtim.tv_nsec) / 1_000_000
    }

    /// Directories first, then names in byte order.
    static func order(dirA: Bool, _ a: String, dirB: Bool, _ b: String) -> Bool {
        if dirA != dirB { return dirA }
        return a.utf8.lexicographicallyPrecedes(b.utf8)
    }

    /// The names in a directory (without `.` and `..`), at most `limit` (`more`: there
    /// were others). The directory itself is opened without following a symlink.
    struct Errno: Error { let code: Int32 }

    static func readNames(_ path: String, limit: Int) -> Result<(names: [String], more: Bool), Errno> {
        let fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        if fd < 0 { return .failure(Errno(code: errno)) }
        guard let d = fdopendir(fd) else {
            let e = errno
            close(fd)
            return .failure(Errno(code: e))
        }
        defer { closedir(d) }
        var names: [String] = []
        var more = false
        while true {
            errno = 0
            guard let ent = readdir(d) else {
                if errno != 0 { return .failure(Errno(code: errno)) }
                break
            }
            let name = withUnsafePointer(to: &ent.pointee.d_name) {
                $0.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) }
            }
            if name == "." || name == ".." { continue }
            if names.count >= limit { more = true; break }
            names.append(name)
        }
        return .success((names, more))
    }

    // MARK: getDirectoryTree

    static func getDirectoryTree(_ p: GetDirectoryTreeParams, _ ctx: ToolContext) -> GetDirectoryTreeResult {
        let target: ConfinedPath
        switch ctx.confinement().resolve(p.path) {
        case .failure(let f): return .failure(f.message)
        case .success(let c): target = c
        }
        if p.maxDepth < 0 { return .failure("maxDepth must be non-negative") }
        let maxDepth = min(p.maxDepth, max(0, ctx.limits.maxTreeDepth))
        let budget = max(1, ctx.limits.maxTreeEntries)

        var st = stat()
        guard target.exists, lstat(target.path, &st) == 0 else { return .failure("Failed to access the specified path") }
        let rootName = target.path == "/" ? "/" : Paths.basename(target.path)

        // Breadth first, so a bound keeps the upper levels complete.
        final class Node {
            let name: String, path: String, isDir: Bool, size: Int64, modified: Int64
            var children: [Node]?
            init(_ name: String, _ path: String, _ st: stat) {
                self.name = name
                self.path = path
                isDir = (st.st_mode & S_IFMT) == S_IFDIR
                size = Int64(st.st_size)
                modified = FileTools.modifiedMs(st)
            }
            var tree: TreeNode {
                TreeNode(name: name, path: path, type: isDir ? .directory : .file, size: size, modified: modified,
                         children: children?.map(\.tree))
            }
        }
        let root = Node(rootName, target.path, st)
        var count = 1
        var truncated = false
        var queue: [(Node, Int)] = [(root, 0)]
        var next = 0
        while next < queue.count {
            let (node, depth) = queue[next]
            next += 1
            guard node.isDir, depth < maxDepth else { continue }
            if count >= budget { truncated = true; break }
            guard case .success(let listed) = readNames(node.path, limit: budget) else { continue }
            if listed.more { truncated = true }
            var kids: [Node] = []
            for name in listed.names {
                let path = Paths.join(node.path, name)
                var cst = stat()
                guard lstat(path, &cst) == 0, (cst.st_mode & S_IFMT) != S_IFLNK else { continue }  // symlinks skipped
                kids.append(Node(name, path, cst))
            }
            kids.sort { order(dirA: $0.isDir, $0.name, dirB: $1.isDir, $1.name) }
            if kids.count > budget - count {
                truncated = true
                kids.removeSubrange((budget - count)...)
            }
            count += kids.count
            node.children = kids
            for k in kids { queue.append((k, depth + 1)) }
        }
        return GetDirectoryTreeResult(success: true, tree: root.tree, truncated: truncated)
    }
}
