// Quant blocks: the bytes the kernels read. See formats/KAF.md for the diagrams.

/// int8 group: `f16 d; i8 qs[G]`; x = d·q. G = 32 gives ggml's block_q8_0 exactly.
@frozen public struct BlockQ8<let G: Int> {
    public var d: UInt16
    public var qs: InlineArray<G, Int8>
}

/// int4 group of 2·H weights: `f16 d; u8 qs[H]`; byte j holds weight j in its low nibble and
/// weight j+H in its high nibble; x = d·(q − 8). H = 16 gives ggml's block_q4_0 exactly.
@frozen public struct BlockQ4<let H: Int> {
    public var d: UInt16
    public var qs: InlineArray<H, UInt8>
}
