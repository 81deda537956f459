#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A whole file mapped read-only. Weights are read in place through `base`; nothing is copied.
public final class MappedFile: @unchecked Sendable {
    public let path: String
    public let count: Int
    /// Start of the mapping (a valid dangling pointer when the file is empty).
    public let base: UnsafeRawPointer
    private let mapped: Bool

    /// Opens `path` for reading only if it is a regular file. O_NONBLOCK: opening a FIFO (or a
    /// device) must not wait for a writer; the descriptor is checked before anything reads from it.
    public static func openRegularFile(_ path: String) throws -> (fd: Int32, size: Int) {
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY)
        if fd < 0 { throw FormatError(path, "cannot open: \(String(cString: strerror(errno)))") }
        var st = stat()
        guard fstat(fd, &st) == 0 else {
            let why = String(cString: strerror(errno))
            close(fd)
            throw FormatError(path, "cannot stat: \(why)")
        }
        switch st.st_mode & S_IFMT {
        case S_IFREG: break
        case S_IFDIR:
            close(fd)
            throw FormatError(path, "is a directory, expected a file")
        default:
            close(fd)
            let kind = (st.st_mode & S_IFMT) == S_IFIFO ? "a FIFO" : "not a regular file"
            throw FormatError(path, "is \(kind), expected a regular file")
        }
        // Reads are blocking again (no effect on a regular file, but a clean descriptor for libraries).
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK)
        return (fd, Int(st.st_size))
    }

    public init(path: String) throws {
        self.path = path
        let (fd, size) = try Self.openRegularFile(path)
        defer { close(fd) }
        count = size
        if count == 0 {
            base = UnsafeRawPointer(bitPattern: 64)!
            mapped = false
            return
        }
        guard let p = mmap(nil, count, PROT_READ, MAP_PRIVATE, fd, 0), p != MAP_FAILED else {
            throw FormatError(path, "cannot mmap: \(String(cString: strerror(errno)))")
        }
        base = UnsafeRawPointer(p)
        mapped = true
    }

    deinit {
        if mapped { munmap(UnsafeMutableRawPointer(mutating: base), count) }
    }

    /// The whole mapping. The pointer is valid only while this object lives: Swift may release an
    /// object right after its last use, so a caller that does not keep the MappedFile stored
    /// somewhere must read through `withBytes`.
    public var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: base, count: count) }

    /// Runs `body` on the bytes with this mapping kept alive until it returns.
    public func withBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try withExtendedLifetime(self) { try body(bytes) }
    }

    /// The bytes `[offset, offset+length)`, or an error naming this file when they are not all inside it.
    public func slice(_ offset: UInt64, _ length: UInt64, what: String) throws -> UnsafeRawBufferPointer {
        guard offset <= UInt64(count), length <= UInt64(count) - offset else {
            throw FormatError(
                path, "\(what): bytes \(offset)..<\(offset &+ length) lie outside the file (\(count) bytes)")
        }
        return UnsafeRawBufferPointer(start: base + Int(offset), count: Int(length))
    }

    /// Hint that the pages will be read soon (or, with `false`, that they may be dropped).
    public func advise(willNeed: Bool, offset: Int = 0, length: Int? = nil) {
        guard mapped else { return }
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let start = offset / page * page
        let len = min((length ?? count) + (offset - start), count - start)
        guard len > 0 else { return }
        _ = madvise(
            UnsafeMutableRawPointer(mutating: base + start), len,
            willNeed ? MADV_WILLNEED : MADV_DONTNEED)
    }
}
