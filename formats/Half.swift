/// bfloat16 <-> Float. Float16 is Swift's own type (F16C with the -march the build uses).
@inline(__always)
public func bf16ToFloat(_ bits: UInt16) -> Float {
    Float(bitPattern: UInt32(bits) << 16)
}

/// Round to nearest even, as PyTorch's `.to(torch.bfloat16)`; NaN stays NaN.
@inline(__always)
public func floatToBF16(_ x: Float) -> UInt16 {
    let u = x.bitPattern
    if x.isNaN { return UInt16(truncatingIfNeeded: (u >> 16) | 0x40) }
    let rounding = UInt32(0x7FFF) + ((u >> 16) & 1)
    return UInt16(truncatingIfNeeded: (u &+ rounding) >> 16)
}

@inline(__always)
public func f16ToFloat(_ bits: UInt16) -> Float { Float(Float16(bitPattern: bits)) }

@inline(__always)
public func floatToF16(_ x: Float) -> UInt16 { Float16(x).bitPattern }
