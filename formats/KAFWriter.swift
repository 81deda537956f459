import CZstd

#if canImport(Glibc)
import Glibc
#endif

/// Constants shared by the .kaf writer and reader (formats/KAF.md).
public enum KAF {
    public static let magic: [UInt8] = [0x4B, 0x41, 0x46, 0x00]  // "KAF\0"
    public static let version: UInt32 = 1
    public static let alignment = 64
    public static let headerSize = 128
    public static let entryFixedSize = 80
    public static let maxDims = 4
    public static let maxNameLength = 255
    public static let maxEntries = 1_000_000
    public static let metaBlobName = "kaf.meta"

    public enum Compression: UInt32, Sendable { case none = 0, zstd = 1 }
}

/// Streams a .kaf file tensor by tensor (bounded memory: only the current chunk is in RAM),
/// hashing as it writes, then writes the directory and header and renames the temp file into
/// place. Dropping a writer without `finish()` removes the temp file.
public final class KAFWriter {
    public let path: String
    private let temp: String
    private var fd: Int32
    private var offset: Int = KAF.headerSize
    private var entries: [KAFEntry] = []
    private var names: Set<String> = []
    private var finished = false
    private var buffer: UnsafeMutableRawPointer
    private let bufferCapacity = 8 << 20
    private var buffered = 0
    private let overwrite: Bool

    /// - Parameter overwrite: replace an existing file at `path` (otherwise that is an error, also
    ///   when the file appears while this writer runs).
    public init(path: String, overwrite: Bool = false) throws {
        self.path = path
        self.overwrite = overwrite
        try AtomicFile.checkTarget(path)
        if !overwrite && access(path, F_OK) == 0 {
            throw FormatError(path, "already exists (use --force to overwrite)")
        }
        (temp, fd) = try AtomicFile.createTemp(for: path)
        buffer = UnsafeMutableRawPointer.allocate(byteCount: bufferCapacity, alignment: 64)
        // Header placeholder; the real one is written by finish().
        offset = 0
        try pad(to: KAF.headerSize)
    }

    deinit {
        buffer.deallocate()
        if !finished { abort() }
    }

    /// Removes the temp file; the target is left untouched.
    public func abort() {
        if fd >= 0 {
            close(fd)
            fd = -1
        }
        unlink(temp)
        AtomicFile.unregister(temp)
        finished = true
    }

    // MARK: low-level output

    private func flush() throws {
        if buffered > 0 {
            try AtomicFile.writeAll(fd, UnsafeRawBufferPointer(start: buffer, count: buffered), file: path)
            buffered = 0
        }
    }

    private func put(_ data: UnsafeRawBufferPointer) throws {
        // Large chunks go straight to write(2): one copy (into the page cache) instead of two.
        if data.count >= bufferCapacity / 2 {
            try flush()
            try AtomicFile.writeAll(fd, data, file: path)
            offset += data.count
            return
        }
        var src = data.baseAddress
        var left = data.count
        while left > 0, let s = src {
            if buffered == bufferCapacity { try flush() }
            let n = min(left, bufferCapacity - buffered)
            (buffer + buffered).copyMemory(from: s, byteCount: n)
            buffered += n
            offset += n
            left -= n
            src = s + n
        }
    }

    /// Zero bytes up to absolute offset `target`.
    private func pad(to target: Int) throws {
        let zeros = [UInt8](repeating: 0, count: 64)
        while offset < target {
            let n = min(64, target - offset)
            try zeros.withUnsafeBytes { try put(UnsafeRawBufferPointer(rebasing: $0[0 ..< n])) }
        }
    }

    // MARK: entries

    /// Receives a tensor's bytes in order, in chunks of any size. A class so that a producer can
    /// hand it to one background writer thread (calls must not overlap).
    public final class Sink: @unchecked Sendable {
        fileprivate let writer: KAFWriter
        fileprivate var hasher = XXH64()
        fileprivate var written = 0
        fileprivate init(writer: KAFWriter) { self.writer = writer }
        public func write(_ chunk: UnsafeRawBufferPointer) throws {
            hasher.update(chunk)
            written += chunk.count
            try writer.put(chunk)
        }
    }

    private func checkName(_ name: String) throws {
        let n = name.utf8.count
        guard n >= 1, n <= KAF.maxNameLength, !name.utf8.contains(0) else {
            throw FormatError(path, "invalid entry name '\(name)' (1...\(KAF.maxNameLength) UTF-8 bytes, no NUL)")
        }
        guard !names.contains(name) else { throw FormatError(path, "duplicate entry name '\(name)'") }
        guard entries.count < KAF.maxEntries else { throw FormatError(path, "too many entries") }
    }

    /// Adds a tensor whose bytes `produce` writes into the sink (exactly dtype × shape bytes).
    public func addTensor(
        name: String, dtype: DType, shape: [Int],
        produce: (Sink) throws -> Void
    ) throws {
        precondition(!finished, "KAFWriter used after finish/abort")
        try checkName(name)
        guard shape.count <= KAF.maxDims else {
            throw FormatError(path, "\(name): \(shape.count) dims (at most \(KAF.maxDims))")
        }
        guard let size = dtype.byteCount(shape: shape) else {
            throw FormatError(path, "\(name): shape \(shape) does not fit dtype \(dtype.name)")
        }
        try pad(to: (offset + KAF.alignment - 1) / KAF.alignment * KAF.alignment)
        let start = offset
        let sink = Sink(writer: self)
        try produce(sink)
        guard sink.written == size else {
            throw FormatError(path, "\(name): wrote \(sink.written) bytes, expected \(size) for \(dtype.name) \(shape)")
        }
        names.insert(name)
        entries.append(
            KAFEntry(
                name: name, dtype: dtype, compression: .none, shape: shape,
                offset: start, storedSize: size, rawSize: size, checksum: sink.hasher.finalize()))
    }

    public func addTensor(name: String, dtype: DType, shape: [Int], bytes: UnsafeRawBufferPointer) throws {
        try addTensor(name: name, dtype: dtype, shape: shape) { try $0.write(bytes) }
    }

    /// Adds a byte blob (tokenizer text, metadata), zstd-compressed when `compress`.
    public func addBlob(name: String, bytes: [UInt8], compress: Bool) throws {
        var stored = bytes
        var comp = KAF.Compression.none
        if compress && !bytes.isEmpty {
            let bound = ZSTD_compressBound(bytes.count)
            var out = [UInt8](repeating: 0, count: bound)
            let n = out.withUnsafeMutableBytes { o in
                bytes.withUnsafeBytes { i in ZSTD_compress(o.baseAddress, bound, i.baseAddress, i.count, 12) }
            }
            if ZSTD_isError(n) != 0 { throw FormatError(path, "\(name): zstd compression failed") }
            stored = Array(out[0 ..< n])
            comp = .zstd
        }
        try stored.withUnsafeBytes { s in
            try addTensor(name: name, dtype: .u8, shape: [s.count]) { try $0.write(s) }
        }
        // Record the raw size and compression on the entry just added.
        let e = entries.removeLast()
        entries.append(
            KAFEntry(
                name: e.name, dtype: .u8, compression: comp, shape: [bytes.count],
                offset: e.offset, storedSize: e.storedSize, rawSize: bytes.count, checksum: e.checksum))
    }

    public func addMeta(_ meta: JSONValue) throws {
        try addBlob(name: KAF.metaBlobName, bytes: Array(meta.serialized().utf8), compress: false)
    }

    // MARK: finish

    /// Writes directory and header, fsyncs, renames into place. Returns the file size.
    @discardableResult
    public func finish() throws -> Int {
        precondition(!finished, "KAFWriter.finish called twice")
        guard names.contains(KAF.metaBlobName) else { throw FormatError(path, "no \(KAF.metaBlobName) blob written") }
        let dataEnd = offset
        try pad(to: (offset + 7) / 8 * 8)
        let dirOffset = offset
        var dir: [UInt8] = []
        for e in entries { e.encode(into: &dir) }
        var dirHash = XXH64()
        dir.withUnsafeBytes { dirHash.update($0) }
        try dir.withUnsafeBytes { try put($0) }
        try flush()
        let fileSize = offset

        var h = [UInt8]()
        h += KAF.magic
        h.appendLE(KAF.version)
        h.appendLE(UInt32(KAF.alignment))
        h.appendLE(UInt32(0))
        h.appendLE(UInt64(fileSize))
        h.appendLE(UInt64(KAF.headerSize))
        h.appendLE(UInt64(dataEnd - KAF.headerSize))
        h.appendLE(UInt64(dirOffset))
        h.appendLE(UInt64(dir.count))
        h.appendLE(UInt64(entries.count))
        h.appendLE(dirHash.finalize())
        h += [UInt8](repeating: 0, count: 120 - h.count)
        h.appendLE(h.withUnsafeBytes { XXH64.hash($0) })
        precondition(h.count == KAF.headerSize)
        let n = h.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, 0) }
        if n != KAF.headerSize { throw FormatError(path, "cannot write header: \(String(cString: strerror(errno)))") }
        try AtomicFile.commit(fd: fd, temp: temp, target: path, overwrite: overwrite)
        close(fd)
        fd = -1
        AtomicFile.unregister(temp)
        finished = true
        return fileSize
    }
}

extension Array where Element == UInt8 {
    mutating func appendLE<T: FixedWidthInteger>(_ v: T) {
        Swift.withUnsafeBytes(of: v.littleEndian) { append(contentsOf: $0) }
    }
}
