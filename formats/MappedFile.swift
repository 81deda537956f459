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

    public init(path: String) throws {
        self.path = path
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 { throw FormatError(path, "cannot open: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var st = stat()
        if fstat(fd, &st) != 0 { throw FormatError(path, "cannot stat: \(String(cString: strerror(errno)))") }
        if (st.st_mode & S_IFMT) == S_IFDIR { throw FormatError(path, "is a directory, expected a file") }
        count = Int(st.st_size)
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
            throw FormatError(path, "\(what): bytes \(offset)..<\(offset &+ length) lie outside the file (\(count) bytes)")
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
        _ = madvise(UnsafeMutableRawPointer(mutating: base + start), len,
                    willNeed ? MADV_WILLNEED : MADV_DONTNEED)
    }
}
