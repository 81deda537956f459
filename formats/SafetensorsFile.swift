/// One tensor of a safetensors file, read in place: `bytes` is a slice of the file's mapping,
/// which `mapping` keeps alive for as long as the tensor is held.
/// The slice need not be aligned for `dtype`: read it with `loadUnaligned`.
public struct SafetensorsTensor: @unchecked Sendable {
    public let name: String
    public let dtype: SafetensorsDType
    public let shape: [Int]
    /// `data_offsets` from the header: relative to the start of the data section.
    public let dataOffsets: Range<Int>
    /// Offset of the first byte in the file.
    public let fileOffset: Int
    public let bytes: UnsafeRawBufferPointer
    public let mapping: MappedFile

    /// The file the tensor lives in.
    public var path: String { mapping.path }
    public var byteCount: Int { bytes.count }
    /// Product of `shape` (1 for a scalar); it fits because it was checked against the bytes.
    public var elementCount: Int { byteCount / dtype.size }
}

/// A safetensors file: u64 LE header length N, N bytes of JSON header, then the data section.
/// Everything the header claims is checked against the file before any tensor is handed out,
/// so a hostile file yields a `FormatError` naming it, never a trap or a wild read.
public final class SafetensorsFile: @unchecked Sendable {
    /// Headers of real checkpoints are a few MB at most; anything larger is refused before parsing.
    public static let maxHeaderBytes: UInt64 = 100 << 20

    public let path: String
    public let mapping: MappedFile
    /// `__metadata__` (empty when absent).
    public let metadata: [String: String]
    /// Ordered by data offsets (begin, end), then name: the order of the bytes in the file.
    public let tensors: [SafetensorsTensor]
    /// Start of the data section in the file (8 + header length).
    public let dataStart: Int
    private let byName: [String: Int]

    public init(path: String) throws {
        let file = try MappedFile(path: path)
        self.path = path
        self.mapping = file
        var cursor = ByteCursor(file.bytes, file: path)
        guard file.count >= 8 else {
            throw FormatError(path, "file is \(file.count) bytes, shorter than the 8-byte header length")
        }
        let n = try cursor.readU64("header length")
        guard n <= Self.maxHeaderBytes else {
            throw FormatError(path, "header length \(n) exceeds the \(Self.maxHeaderBytes >> 20) MiB limit")
        }
        guard n <= UInt64(file.count - 8) else {
            throw FormatError(path, "header length \(n) runs past the end of the file (\(file.count) bytes)")
        }
        let headerBytes = try cursor.bytes(count: n, "header")
        dataStart = cursor.position
        let data = UnsafeRawBufferPointer(rebasing: file.bytes[dataStart...])

        let header: JSONValue
        do {
            header = try JSONValue.parse(headerBytes, file: path, uniqueKeys: true)
        } catch let e as FormatError {
            throw FormatError(path, "header: \(e.message)")
        }
        guard case .object(let entries) = header else {
            throw FormatError(path, "header is not a JSON object")
        }

        var meta: [String: String] = [:]
        var list: [SafetensorsTensor] = []
        list.reserveCapacity(entries.count)
        for (name, entry) in entries {
            if name == "__metadata__" {
                meta = try Self.metadata(entry, path: path)
                continue
            }
            list.append(try Self.tensor(name, entry, data: data, dataStart: dataStart, file: file))
        }
        list.sort {
            ($0.dataOffsets.lowerBound, $0.dataOffsets.upperBound) < (
                $1.dataOffsets.lowerBound, $1.dataOffsets.upperBound
            )
                || ($0.dataOffsets == $1.dataOffsets && $0.name < $1.name)
        }
        try Self.checkNoOverlap(list, path: path)

        metadata = meta
        tensors = list
        byName = Dictionary(uniqueKeysWithValues: list.enumerated().map { ($1.name, $0) })
    }

    public var names: [String] { tensors.map(\.name) }
    /// Sum of the tensors' byte sizes.
    public var totalBytes: Int { tensors.reduce(0) { $0 + $1.byteCount } }

    public subscript(name: String) -> SafetensorsTensor? {
        byName[name].map { tensors[$0] }
    }

    public func tensor(named name: String) throws -> SafetensorsTensor {
        guard let t = self[name] else { throw FormatError(path, "no tensor \(name) in \(path)") }
        return t
    }

    // MARK: header validation

    private static func metadata(_ v: JSONValue, path: String) throws -> [String: String] {
        guard case .object(let o) = v else { throw FormatError(path, "__metadata__ is not a JSON object") }
        var out: [String: String] = [:]
        for (k, v) in o {
            guard case .string(let s) = v else {
                throw FormatError(path, "__metadata__ value for '\(k)' is not a string")
            }
            out[k] = s
        }
        return out
    }

    private static func tensor(
        _ name: String, _ entry: JSONValue, data: UnsafeRawBufferPointer,
        dataStart: Int, file: MappedFile
    ) throws -> SafetensorsTensor {
        let path = file.path
        func fail(_ why: String) -> FormatError { FormatError(path, "tensor '\(name)': \(why)") }
        guard case .object(let e) = entry else { throw fail("header entry is not a JSON object") }

        guard let dtypeValue = e["dtype"] else { throw fail("missing dtype") }
        guard case .string(let dtypeName) = dtypeValue else { throw fail("dtype is not a string") }
        guard let dtype = SafetensorsDType(rawValue: dtypeName) else {
            let known = SafetensorsDType.allCases.map(\.rawValue).joined(separator: ", ")
            throw fail("unsupported dtype \(dtypeName) (expected one of \(known))")
        }

        guard let shapeValue = e["shape"] else { throw fail("missing shape") }
        guard case .array(let dims) = shapeValue else { throw fail("shape is not a JSON array") }
        var shape: [Int] = []
        var elements = 1
        var overflow = false
        for d in dims {
            guard case .int(let v) = d else { throw fail("shape dim \(d.serialized()) is not an integer") }
            guard v >= 0 else { throw fail("shape dim \(v) is negative") }
            guard let dim = Int(exactly: v) else { throw fail("shape dim \(v) is too large") }
            shape.append(dim)
            let (p, o) = elements.multipliedReportingOverflow(by: dim)
            overflow = overflow || o
            elements = p
        }
        let (bytesNeeded, o2) = elements.multipliedReportingOverflow(by: dtype.size)
        if overflow || o2 { throw fail("shape \(shape) × \(dtypeName) overflows the byte count") }

        guard let offValue = e["data_offsets"] else { throw fail("missing data_offsets") }
        guard case .array(let offs) = offValue, offs.count == 2,
            case .int(let b) = offs[0], case .int(let en) = offs[1]
        else {
            throw fail("data_offsets \(offValue.serialized()) is not a pair of integers")
        }
        guard b >= 0, en >= 0 else { throw fail("data_offsets [\(b), \(en)] are negative") }
        guard en >= b else { throw fail("data_offsets end \(en) < begin \(b)") }
        guard en <= Int64(data.count) else {
            throw fail("data_offsets [\(b), \(en)] run past the data section (\(data.count) bytes)")
        }
        let begin = Int(b), end = Int(en)
        guard end - begin == bytesNeeded else {
            throw fail(
                "shape \(shape) × \(dtypeName) needs \(bytesNeeded) bytes but data_offsets [\(begin), \(end)] hold \(end - begin)"
            )
        }
        return SafetensorsTensor(
            name: name, dtype: dtype, shape: shape, dataOffsets: begin ..< end,
            fileOffset: dataStart + begin,
            bytes: UnsafeRawBufferPointer(rebasing: data[begin ..< end]), mapping: file)
    }

    /// `sorted` is in offset order; zero-size tensors occupy nothing and cannot overlap.
    private static func checkNoOverlap(_ sorted: [SafetensorsTensor], path: String) throws {
        var previous: SafetensorsTensor?
        for t in sorted where !t.dataOffsets.isEmpty {
            if let p = previous, t.dataOffsets.lowerBound < p.dataOffsets.upperBound {
                throw FormatError(
                    path,
                    "tensors '\(p.name)' [\(p.dataOffsets.lowerBound), \(p.dataOffsets.upperBound)) and '\(t.name)' [\(t.dataOffsets.lowerBound), \(t.dataOffsets.upperBound)) overlap"
                )
            }
            previous = t
        }
    }
}
