import KAF
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Scratch buffers allocated once, when a component is loaded, and freed with it: nothing is
/// allocated inside a token or frame loop. Buffers are 64-byte aligned and zeroed. Blocks of 1 MiB
/// or more are anonymous mappings, whose pages become resident only when first written: a KV cache
/// sized for the whole context costs what the positions used so far hold, not its full size.
public final class ScratchArena {
    private var blocks: [UnsafeMutableRawPointer] = []
    private var mappings: [(UnsafeMutableRawPointer, Int)] = []
    static let mappedFrom = 1 << 20

    public init() {}

    public func floats(_ count: Int) -> UnsafeMutablePointer<Float> {
        let p = bytes(4 * max(count, 1))
        return p.bindMemory(to: Float.self, capacity: max(count, 1))
    }

    public func bytes(_ count: Int) -> UnsafeMutableRawPointer {
        let n = max(count, 1)
        if n >= Self.mappedFrom,
            let m = mmap(nil, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0), m != MAP_FAILED
        {
            mappings.append((m, n))
            return m  // page-aligned, zero-filled
        }
        let p = UnsafeMutableRawPointer.allocate(byteCount: n, alignment: 64)
        p.initializeMemory(as: UInt8.self, repeating: 0, count: n)
        blocks.append(p)
        return p
    }

    deinit {
        for p in blocks { p.deallocate() }
        for (m, n) in mappings { munmap(m, n) }
    }
}

/// The compute context every model component runs on (docs/ARCHITECTURE.md §4.4): the thread
/// pool, the scratch its kernels need (sized once from the largest shapes the component
/// multiplies), and `linear` for one row (decode) and for a batch of rows (prefill, encoders).
/// Quantized weights take the int8 kernels on activations quantized per 32 (the `_r8` tiles, with
/// AVX-512 VNNI where the CPU has it), or for batches on CPUs with AMX the bf16 tiles; float
/// weights take FMA matvec or sgemm. Not reentrant: one call at a time, like the pool.
public final class Compute {
    public let pool: ThreadPool
    /// Most rows a `linearBatch` call takes, and most columns of any weight.
    public let maxBatch, maxCols: Int
    public let arena = ScratchArena()
    private let xqScratch: UnsafeMutableRawPointer
    /// Which input the scratch holds in int8 form (pointer, length), for `sameInput`.
    private var quantizedInput: (UnsafePointer<Float>, Int)? = nil
    /// Per thread, for f16/bf16 weights widened before sgemm.
    private let blasScratch: [UnsafeMutablePointer<Float>]

    /// Rows widened to f32 per sgemm call (nil: `blasChunkRows`, sized for the LLM's batches).
    private let widenRows: Int?
    /// Where the CPU has AMX and some of the component's weights go to it (`matmulUsesAMX`): the
    /// batch in bf16, and per thread the panel of weights widened to bf16 (MatMulAMX.swift).
    private let amxInput: UnsafeMutableRawPointer?
    private let amxPanels: [UnsafeMutablePointer<UInt16>]
    private let amxFloats: Bool
    private let amxNextBlock = Atomic<Int>(0)

    /// `weights`: every matrix the component multiplies (sizes the sgemm widening scratch).
    /// `largeWidening`: rows that sgemm needs widened to f32 are widened in chunks of about 16 MB
    /// per thread (sgemm repacks the activations once per chunk) — for the encoders' 1500-frame batches.
    /// `bf16FloatWeights`: f16/bf16 weights may multiply in bf16 on AMX (`matmulUsesAMX`), for
    /// components the official code runs in bf16.
    public init(
        threads: Int = 0, maxCols: Int, maxBatch: Int, weights: [WeightMatrix], largeWidening: Bool = false,
        bf16FloatWeights: Bool = false
    ) throws {
        pool = try ThreadPool(threads: threads)
        self.maxCols = maxCols
        self.maxBatch = max(maxBatch, 1)
        let cols = (maxCols + QuantizedActivations.block - 1) / QuantizedActivations.block * QuantizedActivations.block
        let chunk = largeWidening ? max(256, min(2048, (1 << 22) / max(maxCols, 1))) : nil
        widenRows = chunk
        xqScratch = arena.bytes(QuantizedActivations.scratchBytes(count: cols, rows: self.maxBatch))
        let widened = weights.map { matmulFloatScratchCount($0, chunkRows: chunk) }.max() ?? 0
        let a = arena
        blasScratch = (0 ..< pool.threadCount).map { _ in a.floats(widened) }
        amxFloats = bf16FloatWeights
        if cpuHasAMX && weights.contains(where: { matmulUsesAMX($0, tokens: amxMinTokens, floats: bf16FloatWeights) }) {
            let cols32 = (maxCols + 31) / 32 * 32
            amxInput = arena.bytes(BF16Activations.scratchBytes(rows: self.maxBatch, cols: cols32))
            amxPanels = (0 ..< pool.threadCount).map { _ in
                a.bytes(2 * matmulAMXPanelCount(cols: cols32)).bindMemory(to: UInt16.self, capacity: 32 * cols32)
            }
        } else {
            amxInput = nil
            amxPanels = []
        }
        blasSetThreads(1)  // rows are split over our pool; sgemm runs inside each worker
    }

    /// y = W·x (+ bias), rows split over the pool; `x` holds `w.cols` floats. `sameInput`: x is the
    /// input of the previous call (q/k/v, gate/up), so its int8 form in the scratch is reused.
    public func linear(
        _ w: WeightMatrix, _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, bias: [Float]? = nil,
        sameInput: Bool = false
    ) {
        var xq: QuantizedActivations? = nil
        if w.wantsQuantizedInput && w.cols % QuantizedActivations.block == 0 {
            let a = QuantizedActivations(scratch: xqScratch, count: w.cols)
            let held = quantizedInput.map { $0.0 == x && $0.1 == w.cols } ?? false
            if !(sameInput && held) { quantizeActivations(x, into: a) }
            quantizedInput = (x, w.cols)
            xq = a
        } else {
            quantizedInput = nil
        }
        let shared = xq
        pool.parallelForRows(w) { r, _ in matvec(w, x: x, xq: shared, y: y, rows: r) }
        if let bias { addBias(bias, y, rows: 1, ldy: w.rows) }
    }

    /// y = layer(x) for one row.
    public func linear(
        _ layer: Linear, _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, sameInput: Bool = false
    ) {
        linear(layer.weight, x, y, bias: layer.bias, sameInput: sameInput)
    }

    /// Y[t] = layer(X[t]) for `n` ≤ maxBatch rows of X, Y with stride `ldy`.
    public func linearBatch(
        _ layer: Linear, _ X: UnsafePointer<Float>, _ n: Int, _ Y: UnsafeMutablePointer<Float>, ldy: Int
    ) {
        linearBatch(layer.weight, X, n, Y, ldy: ldy, bias: layer.bias)
    }

    /// Y[t] = W·X[t] (+ bias) for `n` ≤ maxBatch rows of X (stride w.cols), Y with stride `ldy`;
    /// rows of W split over the pool.
    public func linearBatch(
        _ w: WeightMatrix, _ X: UnsafePointer<Float>, _ n: Int, _ Y: UnsafeMutablePointer<Float>, ldy: Int,
        bias: [Float]? = nil
    ) {
        quantizedInput = nil
        if let amxInput, matmulUsesAMX(w, tokens: n, floats: amxFloats) {
            let a = BF16Activations(scratch: amxInput, rows: n, cols: w.cols), cols = w.cols, panels = amxPanels
            pool.parallelFor(n: n) { r, _ in a.set(X, ldx: cols, tokens: r) }
            // Rows in blocks of 64 taken by whichever thread is free: a vCPU slowed by its
            // neighbours takes fewer blocks instead of making the other wait (DiT at 10 ODE steps on
            // a noisy 2-vCPU VM: 8.4 s mean over 6 runs against 9.3 with one half per thread).
            let rowsPerBlock = 64, blocks = (w.rows + rowsPerBlock - 1) / rowsPerBlock
            amxNextBlock.store(0, ordering: .relaxed)
            pool.parallelFor(n: pool.threadCount) { _, tid in
                while true {
                    let b = self.amxNextBlock.add(1, ordering: .relaxed).oldValue
                    if b >= blocks { break }
                    let r = b * rowsPerBlock ..< min(w.rows, (b + 1) * rowsPerBlock)
                    matmulAMX(w, a, Y, ldy: ldy, rows: r, panel: panels[tid])
                    if let bias { Self.addBiasRows(bias, Y, tokens: n, ldy: ldy, rows: r) }
                }
            }
            return
        }
        var xq: QuantizedActivations? = nil
        if matmulUsesInt8(w, tokens: n) {
            let a = QuantizedActivations(scratch: xqScratch, count: w.cols, rows: n)
            let cols = w.cols
            // Rows in parallel: on one thread this was ~2% of a q8 encoder window, with the other thread idle.
            pool.parallelFor(n: n) { r, _ in for t in r { quantizeActivations(X + t * cols, into: a, row: t) } }
            xq = a
        }
        let shared = xq, scratch = blasScratch, chunk = widenRows
        pool.parallelForRows(w) { r, tid in
            matmul(
                w, X: X, ldx: w.cols, xq: shared, tokens: n, Y: Y, ldy: ldy, rows: r, scratch: scratch[tid],
                chunkRows: chunk)
            if let bias { Self.addBiasRows(bias, Y, tokens: n, ldy: ldy, rows: r) }
        }
    }

    /// Y[t, i] += bias[i] for i in `rows`: each thread adds the bias to its own output rows, while
    /// they are in cache.
    private static func addBiasRows(
        _ bias: [Float], _ Y: UnsafeMutablePointer<Float>, tokens n: Int, ldy: Int, rows r: Range<Int>
    ) {
        bias.withUnsafeBufferPointer { b in
            let o = r.lowerBound
            for t in 0 ..< n { add(Y + t * ldy + o, b.baseAddress! + o, Y + t * ldy + o, count: r.count) }
        }
    }

    /// Y[t] = layer(X[t]) for any number `n` of rows (Y rows `layer` outputs wide), in batches of
    /// at most maxBatch.
    public func linearRows(_ l: Linear, _ X: UnsafePointer<Float>, _ n: Int, _ Y: UnsafeMutablePointer<Float>) {
        var r = 0
        while r < n {
            let m = min(maxBatch, n - r)
            linearBatch(l, X + r * l.weight.cols, m, Y + r * l.weight.rows, ldy: l.weight.rows)
            r += m
        }
    }

    /// `body(i)` for i in 0..<n over the pool: frame-wise steps of a batch (LayerNorm per frame).
    public func eachRow(_ n: Int, _ body: (Int) -> Void) {
        pool.parallelFor(n: n) { r, _ in for i in r { body(i) } }
    }

    /// An elementwise step over `count` floats in one piece per thread (`body(offset, length)`).
    public func eachPiece(_ count: Int, _ body: (Int, Int) -> Void) {
        let pieces = count >= 1 << 14 ? pool.threadCount : 1
        pool.parallelFor(n: pieces) { r, _ in
            for p in r { body(p * count / pieces, (p + 1) * count / pieces - p * count / pieces) }
        }
    }

    private func addBias(_ bias: [Float], _ Y: UnsafeMutablePointer<Float>, rows n: Int, ldy: Int) {
        bias.withUnsafeBufferPointer { b in
            for t in 0 ..< n { add(Y + t * ldy, b.baseAddress!, Y + t * ldy, count: b.count) }
        }
    }
}
