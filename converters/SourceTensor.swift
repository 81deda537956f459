import KAF

/// The float element types a source weight can have (safetensors and PyTorch agree on these).
public enum SourceFloat: String, Sendable {
    case f32, f16, bf16, f64
    var size: Int { self == .f64 ? 8 : self == .f32 ? 4 : 2 }
}

/// Produces a tensor's values as Float, a block of rows at a time, seen as a matrix
/// [rows = product of all but the last dim, cols = last dim]. The converter pulls rows in chunks,
/// so memory stays bounded whatever the tensor's size.
public protocol TensorProducer: Sendable {
    var shape: [Int] { get }
    /// Where the values come from ("file:tensor"), for the plan and the metadata.
    var source: String { get }
    /// The input file's path, for error messages.
    var file: String { get }
    var sourceDType: String { get }
    /// Writes rows `rows` (each `cols` floats) to `out`.
    func rows(_ rows: Range<Int>, into out: UnsafeMutablePointer<Float>) throws
    /// The raw source bytes of rows `rows` when they are stored exactly as `dtype` (for copying
    /// without conversion), else nil.
    func rawRows(_ rows: Range<Int>, as dtype: DType) -> UnsafeRawBufferPointer?
    /// Lets the kernel drop the source pages once the tensor is converted.
    func releasePages()
}

extension TensorProducer {
    public var cols: Int { shape.last ?? 1 }
    public var rowCount: Int { shape.count <= 1 ? 1 : shape.dropLast().reduce(1, *) }
    public var elementCount: Int { shape.reduce(1, *) }
    public func rawRows(_ rows: Range<Int>, as dtype: DType) -> UnsafeRawBufferPointer? { nil }
}

/// A weight stored contiguously in a mapped input file (safetensors or a `.pt` storage).
public struct StoredTensor: TensorProducer, @unchecked Sendable {
    public let shape: [Int]
    public let source: String
    public let element: SourceFloat
    public let bytes: UnsafeRawBufferPointer
    public let file: String
    /// Keeps the mapping that `bytes` points into alive.
    let owner: AnyObject?
    public var sourceDType: String { element.rawValue }

    public init(shape: [Int], file: String, name: String, element: SourceFloat, bytes: UnsafeRawBufferPointer, owner: AnyObject?) {
        self.shape = shape; self.file = file; self.source = "\(basename(file)):\(name)"
        self.element = element; self.bytes = bytes; self.owner = owner
    }

    /// The float element type named `dtype` (safetensors and PyTorch use the same four), or an
    /// error: weights must be floats.
    static func element(_ dtype: String, name: String, file: String) throws -> SourceFloat {
        guard let e = SourceFloat(rawValue: dtype.lowercased()) else {
            throw FormatError(file, "tensor '\(name)' has dtype \(dtype); a float weight was expected")
        }
        return e
    }

    public init(_ t: SafetensorsTensor) throws {
        let e = try StoredTensor.element(t.dtype.name, name: t.name, file: t.path)
        self.init(shape: t.shape, file: t.path, name: t.name, element: e, bytes: t.bytes, owner: t.mapping)
    }

    public init(_ t: TorchTensor, name: String, file: String) throws {
        let e = try StoredTensor.element(t.dtype.rawValue, name: name, file: file)
        guard let b = t.contiguousBytes else {
            throw FormatError(file, "tensor '\(name)' is not contiguous (strides \(t.strides) for shape \(t.shape))")
        }
        self.init(shape: t.shape, file: file, name: name, element: e, bytes: b, owner: t.storage.file)
    }

    public func rows(_ r: Range<Int>, into out: UnsafeMutablePointer<Float>) throws {
        let c = cols, start = r.lowerBound * c, n = r.count * c
        guard let base = bytes.baseAddress else { return }
        switch element {
        case .f32:
            UnsafeMutableRawPointer(out).copyMemory(from: base + 4 * start, byteCount: 4 * n)
        case .bf16:
            let p = base + 2 * start
            var i = 0
            while i + 8 <= n {
                // bf16 is the top half of an f32: widen and shift, eight at a time.
                let h = p.loadUnaligned(fromByteOffset: 2 * i, as: SIMD8<UInt16>.self)
                let w = SIMD8<UInt32>(truncatingIfNeeded: h) &<< 16
                UnsafeMutableRawPointer(out + i).storeBytes(of: unsafeBitCast(w, to: SIMD8<Float>.self), as: SIMD8<Float>.self)
                i += 8
            }
            while i < n { out[i] = bf16ToFloat(p.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)); i += 1 }
        case .f16:
            let p = base + 2 * start
            for i in 0 ..< n { out[i] = f16ToFloat(p.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)) }
        case .f64:
            let p = base + 8 * start
            for i in 0 ..< n { out[i] = Float(p.loadUnaligned(fromByteOffset: 8 * i, as: Double.self)) }
        }
    }

    public func rawRows(_ r: Range<Int>, as dtype: DType) -> UnsafeRawBufferPointer? {
        let same = (dtype == .f32 && element == .f32) || (dtype == .f16 && element == .f16) || (dtype == .bf16 && element == .bf16)
        guard same else { return nil }
        let c = cols, s = element.size
        return UnsafeRawBufferPointer(rebasing: bytes[(r.lowerBound * c * s) ..< (r.upperBound * c * s)])
    }
}

/// `W = g · v / ‖v‖` (PyTorch weight norm, dim 0): the norm runs over every dim but the first, for
/// Conv1d ([out, in, k]: per output channel) and ConvTranspose1d ([in, out, k]: per input channel)
/// alike. The vocoder's weights are folded once, at conversion time.
public struct WeightNormFold: TensorProducer {
    public let v: StoredTensor
    public let scale: [Float]   // g[i] / ‖v[i]‖
    public var shape: [Int] { v.shape }
    public var source: String { v.source.replacingSuffix("weight_v", with: "weight_{g,v}") }
    public var sourceDType: String { v.sourceDType }
    public var file: String { v.file }

    public init(g: StoredTensor, v: StoredTensor) throws {
        let outer = v.shape.first ?? 1
        guard g.elementCount == outer, v.elementCount % max(outer, 1) == 0 else {
            throw FormatError(v.file, "\(v.source): weight norm: g has \(g.elementCount) values for \(outer) slices of v \(v.shape)")
        }
        let gv = try g.allFloats()
        let per = v.elementCount / max(outer, 1)
        let vv = try v.allFloats()
        var s = [Float](repeating: 0, count: outer)
        for i in 0 ..< outer {
            var ss: Double = 0
            for j in 0 ..< per { let x = Double(vv[i * per + j]); ss += x * x }
            s[i] = ss > 0 ? Float(Double(gv[i]) / ss.squareRoot()) : 0
        }
        self.v = v
        self.scale = s
    }

    public func rows(_ r: Range<Int>, into out: UnsafeMutablePointer<Float>) throws {
        try v.rows(r, into: out)
        let c = cols, per = v.elementCount / max(shape.first ?? 1, 1)
        for row in r {
            let i = row * c / per
            let o = out + (row - r.lowerBound) * c
            for j in 0 ..< c { o[j] *= scale[i] }
        }
    }
}

extension TensorProducer {
    /// Every value (small tensors only: norms, g of weight norm, stats).
    public func allFloats() throws -> [Float] {
        var out = [Float](repeating: 0, count: elementCount)
        try out.withUnsafeMutableBufferPointer { try rows(0 ..< rowCount, into: $0.baseAddress!) }
        return out
    }
}

func basename(_ path: String) -> String {
    path.split(separator: "/").last.map(String.init) ?? path
}

extension String {
    func replacingSuffix(_ s: String, with r: String) -> String {
        hasSuffix(s) ? String(dropLast(s.count)) + r : self
    }
}

extension WeightNormFold {
    public func releasePages() { v.releasePages() }
}
