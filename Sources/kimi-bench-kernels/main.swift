// kimi-bench-kernels: micro-benchmarks of the KimiRuntime kernels at Kimi-Audio 7B dims
// (hidden 3584, FFN 18944). Prints matvec GB/s vs the measured memory bandwidth, prefill GFLOP/s,
// and ThreadPool vs Dispatch overhead per call. Run in a release build (scripts/bench/kernels.sh).
import Foundation
import KAF
import KimiRuntime

setvbuf(stdout, nil, _IOLBF, 0)
if let la = try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8) {
    print(
        "load average before the run: \(la.split(separator: " ").prefix(3).joined(separator: " ")) on \(ProcessInfo.processInfo.activeProcessorCount) cores (other processes skew the 2-thread rows)\n"
    )
}
let env = ProcessInfo.processInfo.environment
let T = Int(env["KIMI_BENCH_T"] ?? "") ?? 512  // prefill tokens
let quick = env["KIMI_BENCH_QUICK"] == "1"
let threadCounts = (env["KIMI_BENCH_THREADS"] ?? "1,2").split(separator: ",").compactMap { Int($0) }
let dtypes = (env["KIMI_BENCH_TYPES"] ?? "q4_g32_r8,q8_g32_r8,q4_g32,q8_g32,bf16,f32").split(separator: ",").compactMap
{ DType(name: String($0)) }
// KIMI_BENCH_SHAPES=ROWSxCOLS,... (default: the 7B MLP matrices)
let shapes: [(Int, Int)] = (env["KIMI_BENCH_SHAPES"] ?? "18944x3584,3584x18944").split(separator: ",").compactMap { s in
    let p = s.split(separator: "x").compactMap { Int($0) }
    return p.count == 2 ? (p[0], p[1]) : nil
}

@inline(never) func now() -> Double { Double(DispatchTime.now().uptimeNanoseconds) * 1e-9 }

/// Best-of-`reps` seconds per call of `f`, each rep running it until ≥ `minTime` has passed.
func timeit(reps: Int = 3, minTime: Double = 0.3, _ f: () -> Void) -> Double {
    f()  // warm-up (page faults, caches)
    var best = Double.infinity
    for _ in 0 ..< reps {
        var n = 0
        let t0 = now()
        var t1 = t0
        repeat {
            f()
            n += 1
            t1 = now()
        } while t1 - t0 < minTime
        best = min(best, (t1 - t0) / Double(n))
    }
    return best
}

var rng: UInt64 = 0x1234_5678
@inline(__always) func nextRandom() -> UInt64 {
    rng &+= 0x9E37_79B9_7F4A_7C15
    var z = rng
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
}

/// Random weights straight in the stored layout (valid blocks: f16 scale 0.01, random quants).
func makeWeight(_ dtype: DType, rows: Int, cols: Int) -> WeightMatrix {
    if dtype.isInterleaved {  // the row-major matrix, interleaved per 8 rows as kimi-convert writes it
        let plain = makeWeight(dtype.plain, rows: rows, cols: cols)
        let p = UnsafeMutableRawPointer.allocate(byteCount: plain.byteCount + 64, alignment: 64)
        for i in 0 ..< rows / 8 {
            RowInterleave.interleave(
                dtype.plain, cols: cols, rowsAt: plain.row(8 * i), stride: plain.rowBytes,
                into: p + 8 * i * plain.rowBytes)
        }
        plain.base.deallocate()
        return WeightMatrix(base: p, dtype: dtype, rows: rows, cols: cols)!
    }
    let rb = dtype.byteCount(shape: [cols])!
    let n = rows * rb
    let p = UnsafeMutableRawPointer.allocate(byteCount: n + 64, alignment: 64)
    let words = n / 8 + 1
    let w = p.bindMemory(to: UInt64.self, capacity: words)
    for i in 0 ..< words { w[i] = nextRandom() }
    let buf = UnsafeMutableRawPointer(p)
    switch dtype {
    case .f32:
        let f = buf.bindMemory(to: Float.self, capacity: rows * cols)
        for i in 0 ..< rows * cols { f[i] = Float(Int32(truncatingIfNeeded: f[i].bitPattern) >> 8) * 1e-9 }
    case .f16, .bf16:
        let h = buf.bindMemory(to: UInt16.self, capacity: rows * cols)
        for i in 0 ..< rows * cols {
            h[i] =
                dtype == .f16
                ? floatToF16(Float(Int16(bitPattern: h[i])) * 1e-6) : floatToBF16(Float(Int16(bitPattern: h[i])) * 1e-6)
        }
    default:
        let bb = dtype.traits.blockBytes
        for b in 0 ..< n / bb {
            buf.storeBytes(of: floatToF16(0.01), toByteOffset: b * bb, as: UInt16.self)
            if dtype.traits.quantBits == 8 {  // keep q8 in [-127, 127] as the converter does
                for j in 0 ..< dtype.groupSize where buf.load(fromByteOffset: b * bb + 2 + j, as: Int8.self) == -128 {
                    buf.storeBytes(of: Int8(127), toByteOffset: b * bb + 2 + j, as: Int8.self)
                }
            }
        }
    }
    return WeightMatrix(base: p, dtype: dtype, rows: rows, cols: cols)!
}

func randomFloats(_ n: Int) -> UnsafeMutablePointer<Float> {
    let p = UnsafeMutablePointer<Float>.allocate(capacity: n)
    for i in 0 ..< n { p[i] = Float(Int64(bitPattern: nextRandom()) >> 40) / Float(1 << 23) }
    return p
}

let pools: [Int: ThreadPool]
do {
    pools = Dictionary(uniqueKeysWithValues: try threadCounts.map { ($0, try ThreadPool(threads: $0)) })
} catch {
    fputs("kimi-bench-kernels: error: \(error)\n", stderr)
    exit(2)
}

// MARK: memory bandwidth

@inline(never) func sumRange(_ p: UnsafePointer<Float>, _ r: Range<Int>) -> Float {
    var a = SIMD8<Float>(), b = SIMD8<Float>(), c = SIMD8<Float>(), d = SIMD8<Float>()
    var i = r.lowerBound
    let raw = UnsafeRawPointer(p)
    while i + 32 <= r.upperBound {
        a += raw.loadUnaligned(fromByteOffset: 4 * i, as: SIMD8<Float>.self)
        b += raw.loadUnaligned(fromByteOffset: 4 * i + 32, as: SIMD8<Float>.self)
        c += raw.loadUnaligned(fromByteOffset: 4 * i + 64, as: SIMD8<Float>.self)
        d += raw.loadUnaligned(fromByteOffset: 4 * i + 96, as: SIMD8<Float>.self)
        i += 32
    }
    return (a + b + c + d).sum()
}

let bwFloats = (quick ? 128 : 512) << 18  // 512 MiB (quick: 128 MiB), far beyond L3
let bwBuf = randomFloats(bwFloats)
var bandwidth: [Int: Double] = [:]
print("## Memory bandwidth (read: SIMD sum over \((bwFloats * 4) >> 20) MiB; copy: memcpy of half of it)")
print("| threads | read GB/s | memcpy GB/s (read+write) |")
print("| --- | --- | --- |")
var sink: Float = 0
for t in threadCounts {
    let pool = pools[t]!
    let partial = UnsafeMutablePointer<Float>.allocate(capacity: 64)
    let s = timeit(minTime: 0.5) {
        pool.parallelFor(n: bwFloats) { r, i in partial[i * 8] = sumRange(bwBuf, r) }
    }
    sink += partial[0]
    let half = bwFloats / 2
    let c = timeit(minTime: 0.5) {
        pool.parallelFor(n: half) { r in memcpy(bwBuf + half + r.lowerBound, bwBuf + r.lowerBound, 4 * r.count) }
    }
    bandwidth[t] = Double(bwFloats * 4) / s / 1e9
    print("| \(t) | \(String(format: "%.1f", bandwidth[t]!)) | \(String(format: "%.1f", Double(half * 8) / c / 1e9)) |")
}
bwBuf.deallocate()

// MARK: thread pool overhead

do {
    print("\n## parallelFor overhead per call (empty body, n = 3584)")
    print("| threads | ThreadPool µs | DispatchQueue.concurrentPerform µs |")
    print("| --- | --- | --- |")
    for t in threadCounts {
        let pool = pools[t]!
        let counter = UnsafeMutablePointer<Int>.allocate(capacity: 16)
        counter.initialize(repeating: 0, count: 16)
        let a =
            timeit(minTime: 0.3) {
                for _ in 0 ..< 100 { pool.parallelFor(n: 3584) { r in counter[0] &+= r.count & 1 } }
            } / 100
        let b =
            timeit(minTime: 0.3) {
                for _ in 0 ..< 100 { dispatchParallelFor(threads: t, n: 3584) { r in counter[0] &+= r.count & 1 } }
            } / 100
        print("| \(t) | \(String(format: "%.2f", a * 1e6)) | \(String(format: "%.2f", b * 1e6)) |")
    }
}

// MARK: matvec

print(
    "\n## matvec (decode), y = W·x, W = rows×cols; GB/s = weight bytes / time (activation quantization included for the integer path)"
)
print("| dtype | path | rows×cols | bytes/weight | threads | µs/call | GB/s | fraction of read bandwidth |")
print("| --- | --- | --- | --- | --- | --- | --- | --- |")
var prefillRows: [String] = []
for dtype in dtypes {
    for (rows, cols) in shapes {
        let w = makeWeight(dtype, rows: rows, cols: cols)
        let x = randomFloats(max(cols, 1) * T)
        let y = UnsafeMutablePointer<Float>.allocate(capacity: rows * T)
        let qbuf = UnsafeMutableRawPointer.allocate(
            byteCount: QuantizedActivations.scratchBytes(count: cols, rows: T), alignment: 64)
        let xq = QuantizedActivations(scratch: qbuf, count: cols, rows: 1)
        var paths: [(String, Bool)] = [("fma", false)]
        if dtype.isQuantized {
            paths = dtype.isInterleaved ? [("int8", true)] : [("int8", true), ("f32-dequant", false)]
        }
        for (name, integer) in paths {
            for t in threadCounts {
                let pool = pools[t]!
                let s = timeit {
                    if integer { quantizeActivations(x, into: xq) }
                    pool.parallelForRows(w) { r, _ in matvec(w, x: x, xq: integer ? xq : nil, y: y, rows: r) }
                }
                let gbs = Double(w.byteCount) / s / 1e9
                print(
                    "| \(dtype.name) | \(name) | \(rows)×\(cols) | \(String(format: "%.4g", dtype.bitsPerWeight / 8)) | \(t) | \(String(format: "%.0f", s * 1e6)) | \(String(format: "%.1f", gbs)) | \(String(format: "%.2f", gbs / bandwidth[t]!)) |"
                )
            }
        }
        // prefill
        let flops = 2.0 * Double(rows) * Double(cols) * Double(T)
        let ldy = rows
        if dtype.isQuantized {
            let xqT = QuantizedActivations(scratch: qbuf, count: cols, rows: T)
            for t in threadCounts {
                let pool = pools[t]!
                let s = timeit(reps: quick ? 1 : 2, minTime: 0.1) {
                    pool.parallelFor(n: T) { r in for i in r { quantizeActivations(x + i * cols, into: xqT, row: i) } }
                    pool.parallelForRows(w) { r, _ in
                        if w.dtype.isInterleaved {
                            matmulR8(w, xqT, y, ldy: ldy, rows: r)
                        } else {
                            matmulQuant(w, xqT, y, ldy: ldy, rows: r)
                        }
                    }
                }
                prefillRows.append(
                    "| \(dtype.name) | int8 tiles (\(dtype.isInterleaved ? "8 rows × 4 tok" : "4 tok")) | \(rows)×\(cols) | \(T) | \(t) | \(String(format: "%.0f", s * 1e3)) | \(String(format: "%.1f", flops / s / 1e9)) |"
                )
            }
            if dtype.isInterleaved && cpuHasAMX && cols % 32 == 0 {
                let araw = UnsafeMutableRawPointer.allocate(
                    byteCount: BF16Activations.scratchBytes(rows: T, cols: cols), alignment: 64)
                let a = BF16Activations(scratch: araw, rows: T, cols: cols)
                let panels = (0 ..< 8).map { _ in
                    UnsafeMutableRawPointer.allocate(byteCount: 2 * matmulAMXPanelCount(cols: cols), alignment: 64)
                        .bindMemory(to: UInt16.self, capacity: matmulAMXPanelCount(cols: cols))
                }
                for t in threadCounts {
                    let pool = pools[t]!
                    let s = timeit(reps: quick ? 1 : 2, minTime: 0.1) {
                        pool.parallelFor(n: T) { r in a.set(x, ldx: cols, tokens: r) }
                        pool.parallelForRows(w) { r, i in matmulAMX(w, a, y, ldy: ldy, rows: r, panel: panels[i]) }
                    }
                    prefillRows.append(
                        "| \(dtype.name) | AMX bf16 tiles (32 rows × 32 tok) | \(rows)×\(cols) | \(T) | \(t) | \(String(format: "%.0f", s * 1e3)) | \(String(format: "%.1f", flops / s / 1e9)) |"
                    )
                }
                panels.forEach { $0.deallocate() }
                araw.deallocate()
            }
        } else {
            blasSetThreads(1)
            let chunk = matmulFloatScratchCount(w)
            let scratch = (0 ..< 8).map { _ in UnsafeMutablePointer<Float>.allocate(capacity: max(chunk, 1)) }
            for t in threadCounts {
                let pool = pools[t]!
                let s = timeit(reps: quick ? 1 : 2, minTime: 0.1) {
                    pool.parallelFor(n: rows) { r, i in
                        matmulFloat(w, x, ldx: cols, tokens: T, y, ldy: ldy, rows: r, scratch: scratch[i])
                    }
                }
                prefillRows.append(
                    "| \(dtype.name) | OpenBLAS sgemm (per-thread rows) | \(rows)×\(cols) | \(T) | \(t) | \(String(format: "%.0f", s * 1e3)) | \(String(format: "%.1f", flops / s / 1e9)) |"
                )
                let s2 = timeit(reps: 1, minTime: 0.1) {
                    pool.parallelFor(n: rows) { r in matmulFloatTiled(w, x, ldx: cols, tokens: T, y, ldy: ldy, rows: r)
                    }
                }
                prefillRows.append(
                    "| \(dtype.name) | own 4×2 tiles | \(rows)×\(cols) | \(T) | \(t) | \(String(format: "%.0f", s2 * 1e3)) | \(String(format: "%.1f", flops / s2 / 1e9)) |"
                )
            }
            if threadCounts.count > 0 {
                let tmax = threadCounts.max()!
                blasSetThreads(tmax)
                let s3 = timeit(reps: 1, minTime: 0.1) {
                    matmulFloat(w, x, ldx: cols, tokens: T, y, ldy: ldy, rows: 0 ..< rows, scratch: scratch[0])
                }
                blasSetThreads(1)
                prefillRows.append(
                    "| \(dtype.name) | sgemm, OpenBLAS threads | \(rows)×\(cols) | \(T) | \(tmax) | \(String(format: "%.0f", s3 * 1e3)) | \(String(format: "%.1f", flops / s3 / 1e9)) |"
                )
            }
            scratch.forEach { $0.deallocate() }
        }
        w.base.deallocate()
        x.deallocate()
        y.deallocate()
        qbuf.deallocate()
    }
}

print("\n## matmul (prefill), Y[T, rows] = X[T, cols]·Wᵀ (activation quantization included for int8)")
print("| dtype | kernel | rows×cols | T | threads | ms | GFLOP/s |")
print("| --- | --- | --- | --- | --- | --- | --- |")
for r in prefillRows { print(r) }
if sink == 12345 { print(sink) }
