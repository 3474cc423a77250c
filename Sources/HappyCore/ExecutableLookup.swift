#if canImport(Glibc)
import Glibc
#endif

/// The one PATH lookup of the product: what `doctor` reports as found is exactly what a
/// spawn runs, and what the machine metadata's `cliAvailability` says.
public enum ExecutableLookup {
    /// A command: one with a `/` is used as is (relative to the working directory); a bare
    /// name is searched in `path` (default `/usr/local/bin:/usr/bin:/bin`; an empty entry
    /// is the working directory). The result must be a regular file we may execute.
    public static func resolve(_ command: String, path: String?) -> String? {
        if command.isEmpty { return nil }
        if command.contains("/") { return isExecutableFile(command) ? command : nil }
        let dirs = (path ?? "/usr/local/bin:/usr/bin:/bin").split(separator: ":", omittingEmptySubsequences: false)
        for d in dirs {
            let candidate = (d.isEmpty ? "." : String(d)) + "/" + command
            if isExecutableFile(candidate) { return candidate }
        }
        return nil
    }

    /// A regular file (symlinks followed) with execute permission for us.
    public static func isExecutableFile(_ p: String) -> Bool {
        var st = stat()
        return stat(p, &st) == 0 && (st.st_mode & S_IFMT) == S_IFREG && access(p, X_OK) == 0
    }
}
