import KAF
import Dispatch
#if canImport(Glibc)
import Glibc
#endif

/// Quantization error of one tensor against its source values.
public struct TensorError: Sendable {
    public var sumSquaredError: Double = 0
    public var sumSquaredSignal: Double = 0
    public var maxAbsError: Double = 0
    public var count = 0

    public var rmse: Double { count == 0 ? 0 : (sumSquaredError / Double(count)).squareRoot() }
    /// Signal-to-noise ratio in dB; nil when the tensor is stored exactly.
    public var snrDB: Double? { sumSquaredError == 0 ? nil : 10 * log10(max(sumSquaredSignal, 1e-300) / sumSquaredError) }

    mutating func merge(_ o: TensorError) {
        sumSquaredError += o.sumSquaredError
        sumSquaredSignal += o.sumSquaredSignal
        maxAbsError = max(maxAbsError, o.maxAbsError)
        count += o.count
    }
}

/// Progress of a running conversion, reported after each chunk.
public struct ConversionProgress: Sendable {
    public let tensorIndex: Int
    public let tensorCount: Int
    public let name: String
    public let bytesRead: Int
    public let bytesTotal: Int
}

/// Writes a plan to a .kaf file: tensor by tensor, in chunks of rows, on `threads` threads.
public struct ConversionRunner {
    public let plan: ConversionPlan
    public var threads: Int
    /// Floats per chunk and thread: bounds memory (≈ 3 × 4 bytes × this × threads).
    public var chunkFloats = 1 << 21
    public var commandLine: String = ""

    public init(plan: ConversionPlan, threads: Int) {
        self.plan = plan
        self.threads = max(1, threads)
    }

    /// Converts and writes; returns the per-tensor errors.
    @discardableResult
    public func write(to path: String, overwrite: Bool, progress: (ConversionProgress) -> Void = { _ in }) throws -> [String: TensorError] {
        let w = try KAFWriter(path: path, overwrite: overwrite)
        var errors: [String: TensorError] = [:]
        let items = plan.items
        let total = plan.inputBytes
        var done = 0
        for (i, item) in items.enumerated() {
            let e = try convert(item, into: w) { read in
                progress(ConversionProgress(tensorIndex: i, tensorCount: items.count, name: item.name, bytesRead: done + read, bytesTotal: total))
            }
            done += item.producer.elementCount * sourceElementSize(item.producer)
            item.producer.releasePages()
            errors[item.name] = e
        }
        for c in plan.components { for b in c.blobs { try w.addBlob(name: b.name, bytes: b.bytes, compress: b.compress) } }
        try w.addMeta(meta(errors: errors))
        try w.finish()
        return errors
    }

    /// One tensor: pull rows in chunks, convert each chunk's rows in parallel, write in order.
    private func convert(_ item: PlanItem, into w: KAFWriter, progress: (Int) -> Void) throws -> TensorError {
        let p = item.producer, t = item.target
        let cols = p.cols, rows = p.rowCount
        let rowBytes = try byteCount(t, cols: cols, item: item)
        // `_r8` types are quantized row-major and interleaved per 8 rows: chunks and the threads'
        // parts are whole row groups.
        let quantum = t.traits.interleave
        let chunkRows = max(quantum, min(rows, chunkFloats * threads / max(cols, 1)) / quantum * quantum)
        var total = TensorError()
        try w.addTensor(name: item.name, dtype: t, shape: p.shape) { sink in
            // Same type as the source: copy the bytes as they are.
            if let _ = p.rawRows(0 ..< 0, as: t) {
                var r = 0
                while r < rows {
                    let e = min(rows, r + chunkRows)
                    try sink.write(p.rawRows(r ..< e, as: t)!)
                    progress(e * cols * sourceElementSize(p))
                    r = e
                }
                return
            }
            // Two buffer pairs: while the workers fill one, a serial queue hashes and writes the
            // other, so disk writes overlap with quantization.
            let bufs = (0 ..< 2).map { _ in
                (UnsafeMutablePointer<Float>.allocate(capacity: chunkRows * cols),
                 UnsafeMutableRawPointer.allocate(byteCount: chunkRows * rowBytes, alignment: 64))
            }
            // Row-major blocks of the chunk before interleaving (`_r8` types only).
            let plainRows = quantum > 1 ? UnsafeMutableRawPointer.allocate(byteCount: chunkRows * rowBytes, alignment: 64) : nil
            defer { plainRows?.deallocate() }
            let writeQueue = DispatchQueue(label: "kaf.write")
            let writeError = FirstError()
            let free = [DispatchSemaphore(value: 1), DispatchSemaphore(value: 1)]   // buffer pair idle
            defer {
                writeQueue.sync {}
                for (s, o) in bufs { s.deallocate(); o.deallocate() }
            }
            var r = 0, k = 0
            while r < rows {
                let e = min(rows, r + chunkRows)
                let n = e - r
                let (src, out) = bufs[k & 1]
                // The pair about to be refilled was queued two chunks ago: wait for its write only.
                let idle = free[k & 1]
                idle.wait()
                if let err = writeError.error { idle.signal(); throw err }
                let parts = max(1, min(threads, n / quantum))
                let partErrors = UnsafeMutablePointer<TensorError>.allocate(capacity: parts)
                partErrors.initialize(repeating: TensorError(), count: parts)
                defer { partErrors.deallocate() }
                let shared = Unchecked((src, out, partErrors, r, plainRows))
                let failure = FirstError()
                DispatchQueue.concurrentPerform(iterations: parts) { k in
                    let (src, out, partErrors, r, plainRows) = shared.value
                    let a = n / quantum * k / parts * quantum, b = k == parts - 1 ? n : n / quantum * (k + 1) / parts * quantum
                    let q = plainRows ?? out
                    do {
                        try p.rows((r + a) ..< (r + b), into: src + a * cols)
                        var err = TensorError()
                        for row in a ..< b {
                            let x = src + row * cols
                            if let j = firstNonFinite(x, cols) {
                                throw FormatError(p.file, "tensor '\(item.name)' holds a non-finite value (\(x[j])) at row \(r + row), column \(j)")
                            }
                            err.merge(Quantizer.quantizeRowFast(x, count: cols, as: t.plain, into: q + row * rowBytes))
                        }
                        if quantum > 1 {
                            for g in stride(from: a, to: b, by: quantum) {
                                RowInterleave.interleave(t.plain, cols: cols, rowsAt: q + g * rowBytes, stride: rowBytes, into: out + g * rowBytes)
                            }
                        }
                        partErrors[k] = err
                    } catch {
                        failure.set(error)
                    }
                }
                if let e = failure.error { idle.signal(); throw e }
                for q in 0 ..< parts { total.merge(partErrors[q]) }
                let chunk = Unchecked(UnsafeRawBufferPointer(start: out, count: n * rowBytes))
                writeQueue.async {
                    defer { idle.signal() }
                    guard writeError.error == nil else { return }
                    do { try sink.write(chunk.value) } catch { writeError.set(error) }
                }
                progress(e * cols * sourceElementSize(p))
                r = e; k += 1
            }
            writeQueue.sync {}
            if let err = writeError.error { throw err }
        }
        return total
    }

    private func byteCount(_ t: DType, cols: Int, item: PlanItem) throws -> Int {
        if t.isInterleaved, item.producer.rowCount % t.traits.interleave != 0 || item.producer.shape.count != 2 {
            throw FormatError(item.producer.file, "'\(item.name)': \(item.producer.shape) cannot be stored as \(t.name) (2-D, rows a multiple of 8)")
        }
        guard let b = t.plain.byteCount(shape: [cols]) else {
            throw FormatError(item.producer.file, "'\(item.name)': rows of \(cols) cannot be stored as \(t.name)")
        }
        return b
    }

    /// kaf.meta: configs, quantization settings and errors, provenance.
    func meta(errors: [String: TensorError]) -> JSONValue {
        var comps: [String: JSONValue] = [:]
        var files: [JSONValue] = []
        var dropped: [JSONValue] = []
        for c in plan.components {
            comps[c.name] = c.meta
            for f in c.files {
                var st = stat()
                let size = stat(f, &st) == 0 ? Int64(st.st_size) : -1
                files.append(["path": .string(f), "size": .int(size)])
            }
            for d in c.dropped { dropped.append(["source": .string(d.source), "reason": .string(d.reason)]) }
        }
        var tensors: [String: JSONValue] = [:]
        for item in plan.items {
            var o: [String: JSONValue] = ["source": .string(item.producer.source), "source_dtype": .string(item.producer.sourceDType),
                                          "dtype": .string(item.target.name), "reason": .string(item.reason)]
            if let e = errors[item.name] {
                o["rmse"] = .double(e.rmse)
                o["max_abs"] = .double(e.maxAbsError)
                o["snr_db"] = e.snrDB.map { .double($0) } ?? .null
            }
            tensors[item.name] = .object(o)
        }
        var keeps: [JSONValue] = []
        for k in plan.policy.keeps { keeps.append(.string("\(k.glob)=\(k.type.name)")) }
        return [
            "format": "kaf", "version": 1,
            "converter": ["name": "kimi-convert", "version": .string(KimiConvertVersion), "command": .string(commandLine)],
            "source": ["kind": .string(plan.sourceKind), "folder": .string(plan.sourceFolder)],
            "components": .object(comps),
            "quantization": ["default": .string(plan.policy.modeName), "keep": .array(keeps)],
            "tensors": .object(tensors),
            "dropped": .array(dropped),
            "provenance": ["files": .array(files)],
        ]
    }
}

public let KimiConvertVersion = "0.1.0"

extension TensorProducer {
    /// Dropping source pages after use keeps resident memory bounded by the chunk buffers rather
    /// than growing with the input size (mapped file pages count as resident).
    public func releasePages() {}
}

extension StoredTensor {
    public func releasePages() {
        guard let b = bytes.baseAddress, bytes.count > 0 else { return }
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let start = Int(bitPattern: b) / page * page
        let end = (Int(bitPattern: b) + bytes.count + page - 1) / page * page
        _ = madvise(UnsafeMutableRawPointer(bitPattern: start), end - start, MADV_DONTNEED)
    }
}

/// Index of the first NaN or infinity in `x[0..<n]`, checked eight at a time (exponent all ones).
@inline(__always) func firstNonFinite(_ x: UnsafePointer<Float>, _ n: Int) -> Int? {
    let expMask = SIMD8<UInt32>(repeating: 0x7F80_0000)
    var any = SIMD8<UInt32>.zero
    var i = 0
    while i + 8 <= n {
        let b = UnsafeRawPointer(x + i).loadUnaligned(as: SIMD8<UInt32>.self) & expMask
        any.replace(with: SIMD8<UInt32>(repeating: 1), where: b .== expMask)
        i += 8
    }
    var bad = false
    for l in 0 ..< 8 where any[l] != 0 { bad = true }
    if !bad { for j in i ..< n where !x[j].isFinite { bad = true } }
    guard bad else { return nil }
    return (0 ..< n).first { !x[$0].isFinite }
}

/// Raw pointers handed to worker threads that write disjoint rows.
struct Unchecked<T>: @unchecked Sendable {
    let value: T
    init(_ v: T) { value = v }
}

/// Keeps the first error thrown by any worker thread.
final class FirstError: @unchecked Sendable {
    private var m = pthread_mutex_t()
    private(set) var error: Error?
    init() { pthread_mutex_init(&m, nil) }
    deinit { pthread_mutex_destroy(&m) }
    func set(_ e: Error) {
        pthread_mutex_lock(&m); defer { pthread_mutex_unlock(&m) }
        if error == nil { error = e }
    }
}
