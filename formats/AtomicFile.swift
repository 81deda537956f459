#if canImport(Glibc)
import Glibc
#endif

/// Writes go to a temporary file beside the target and become visible only by `rename` after
/// `fsync`: a failed or interrupted run leaves no half-written output. The temp paths in use are
/// kept in a fixed C buffer so a SIGINT/SIGTERM handler can unlink them (async-signal-safe).
public enum AtomicFile {
    private static let slots = 8
    private static let slotBytes = 4096
    nonisolated(unsafe) private static let table: UnsafeMutablePointer<CChar> = {
        let p = UnsafeMutablePointer<CChar>.allocate(capacity: slots * slotBytes)
        p.initialize(repeating: 0, count: slots * slotBytes)
        return p
    }()

    /// The temp path for `target`: hidden, same folder (same file system, so rename is atomic).
    public static func tempPath(for target: String) -> String {
        let slash = target.lastIndex(of: "/")
        let dir = slash.map { String(target[..<$0]) } ?? "."
        let base = slash.map { String(target[target.index(after: $0)...]) } ?? target
        return "\(dir)/.\(base).tmp-\(getpid())"
    }

    static func register(_ path: String) {
        let bytes = Array(path.utf8)
        guard bytes.count < slotBytes else { return }
        for s in 0 ..< slots where table[s * slotBytes] == 0 {
            for (i, b) in bytes.enumerated() { table[s * slotBytes + i] = CChar(bitPattern: b) }
            table[s * slotBytes + bytes.count] = 0
            return
        }
    }

    static func unregister(_ path: String) {
        for s in 0 ..< slots where table[s * slotBytes] != 0 {
            if String(cString: table + s * slotBytes) == path { table[s * slotBytes] = 0 }
        }
    }

    /// Installs SIGINT/SIGTERM handlers that remove registered temp files and exit 130/143.
    public static func installSignalCleanup() {
        let handler: @convention(c) (Int32) -> Void = { sig in
            for s in 0 ..< AtomicFile.slots where AtomicFile.table[s * AtomicFile.slotBytes] != 0 {
                unlink(AtomicFile.table + s * AtomicFile.slotBytes)
            }
            _exit(128 + sig)
        }
        signal(SIGINT, handler)
        signal(SIGTERM, handler)
    }

    /// fsync + rename + fsync of the folder.
    static func commit(fd: Int32, temp: String, target: String) throws {
        if fsync(fd) != 0 { throw FormatError(target, "fsync failed: \(String(cString: strerror(errno)))") }
        if rename(temp, target) != 0 { throw FormatError(target, "cannot rename temp file into place: \(String(cString: strerror(errno)))") }
        let slash = target.lastIndex(of: "/")
        let dir = slash.map { String(target[..<$0]) } ?? "."
        let dfd = open(dir.isEmpty ? "/" : dir, O_RDONLY | O_DIRECTORY)
        if dfd >= 0 { _ = fsync(dfd); close(dfd) }
    }

    /// Writes `bytes` to `target` atomically.
    public static func write(_ bytes: [UInt8], to target: String) throws {
        let temp = tempPath(for: target)
        register(temp)
        defer { unregister(temp) }
        let fd = open(temp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        if fd < 0 { throw FormatError(target, "cannot create \(temp): \(String(cString: strerror(errno)))") }
        var ok = false
        defer { close(fd); if !ok { unlink(temp) } }
        try bytes.withUnsafeBytes { try writeAll(fd, $0, file: target) }
        try commit(fd: fd, temp: temp, target: target)
        ok = true
    }

    static func writeAll(_ fd: Int32, _ data: UnsafeRawBufferPointer, file: String) throws {
        var p = data.baseAddress
        var left = data.count
        while left > 0, let q = p {
            let n = Glibc.write(fd, q, left)
            if n < 0 {
                if errno == EINTR { continue }
                throw FormatError(file, "write failed: \(String(cString: strerror(errno)))")
            }
            p = q + n
            left -= n
        }
    }
}
