import FoundationEssentials
#if canImport(Glibc)
import Glibc
#endif

public enum FileManagerShim {
    public static func removeTree(_ path: String) throws {
        try FileManager.default.removeItem(atPath: path)
    }
    public static func listDirectory(_ path: String) -> [String] {
        (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []
    }
}
