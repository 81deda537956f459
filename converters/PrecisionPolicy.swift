import KAF

#if canImport(Glibc)
import Glibc
#endif

/// Which type each tensor is stored as. The defaults follow the evidence gathered in
/// the peers' measurements (docs/ARCHITECTURE.md §6): audio encoders and codebooks degrade badly at 4 bits, the
/// vocoder is convolution-heavy and stays 16-bit, norms and biases are tiny and stay f32. The
/// LLM's linear layers take the requested bits. `--keep GLOB=TYPE` overrides any of it.
public struct PrecisionPolicy: Sendable {
    public enum Mode: Sendable, Equatable {
        case quantized(bits: Int, group: Int)
        case float(DType)
    }

    public let mode: Mode
    public let keeps: [(glob: String, type: DType)]
    /// Store quantized matrices that are multiplied with activations (not embeddings) in the
    /// 8-row interleaved `_r8` layout the runtime's kernels read fastest (formats/KAF.md).
    public let interleave: Bool

    public init(mode: Mode, keeps: [(glob: String, type: DType)] = [], interleave: Bool = true) {
        self.mode = mode
        self.keeps = keeps
        self.interleave = interleave
    }

    /// "q4_g32", "f16", ... for the file's metadata.
    public var modeName: String {
        switch mode {
        case .quantized(let b, let g): return DType.quantized(bits: b, group: g)!.name
        case .float(let t): return t.name
        }
    }

    /// What a tensor is in its component (formats/Architecture/TensorSpec.swift).
    public typealias Role = TensorRole

    /// The type for `name` (already the .kaf name) and why. Quantized matrices of the roles that
    /// are multiplied with activations get the `_r8` layout when `interleave` is on and the rows
    /// come in whole groups of 8 (also for `--keep` types: the glob picks bits and group).
    public func choose(name: String, shape: [Int], role: Role) -> (DType, String) {
        let (t, why) = chooseBlocks(name: name, shape: shape, role: role)
        guard interleave, t.isQuantized, !t.isInterleaved, Self.multiplied.contains(role),
            shape.count == 2, shape[0] % RowInterleave.rows == 0, let r8 = t.interleaved
        else { return (t, why) }
        return (r8, why + ", rows interleaved by 8")
    }

    /// Roles whose matrices are multiplied with activations (not looked up by row).
    static let multiplied: Set<Role> = [.linear, .head, .adaptor, .encoderLinear, .detokLinear]

    private func chooseBlocks(name: String, shape: [Int], role: Role) -> (DType, String) {
        let isVector = shape.count <= 1 || role == .vector
        for k in keeps where globMatch(k.glob, name) {
            // A glob such as 'whisper.*=q4' means the matrices: norms and biases quantized to 4 bits
            // ruin a model (tiny.en's encoder cosine 0.83 instead of 0.97 with them in f32).
            if isVector && k.type.isQuantized {
                return (.f32, "small vector: f32 (--keep \(k.glob)=\(k.type.name) applies to matrices)")
            }
            if let last = shape.last, k.type.isQuantized, last % k.type.groupSize != 0 {
                return (.f16, "--keep \(k.glob)=\(k.type.name) asked, but rows of \(last) are not whole groups")
            }
            if k.type.isInterleaved, shape.count != 2 || shape[0] % RowInterleave.rows != 0 {
                return (
                    k.type.plain,
                    "--keep \(k.glob)=\(k.type.name) asked, but \(shape) is not 2-D with rows in whole groups of 8"
                )
            }
            return (k.type, "--keep \(k.glob)=\(k.type.name)")
        }
        switch mode {
        case .float(let t):
            if isVector { return (.f32, "small vector: f32") }
            return (t, "requested \(t.name)")
        case .quantized(let bits, let group):
            if isVector { return (.f32, "small vector: f32") }
            func q(_ b: Int, _ why: String) -> (DType, String) {
                guard let last = shape.last, last % group == 0, let t = DType.quantized(bits: b, group: group) else {
                    return (.f16, "rows of \(shape.last ?? 0) are not whole groups of \(group): f16")
                }
                return (t, why)
            }
            switch role {
            case .linear: return q(bits, "decoder linear: requested \(bits)-bit")
            case .embedding: return q(max(bits, 8), "embedding: at least 8-bit")
            case .head: return q(max(bits, 8), "output head: at least 8-bit")
            case .adaptor: return q(max(bits, 8), "adaptor: at least 8-bit")
            case .encoderLinear: return q(8, "audio encoder: 8-bit (fragile at 4-bit)")
            case .transcriptDecoder:
                // Its greedy ids are the transcript: at q8, 4 of 7 real tiny.en windows changed
                // (CTranslate2's int8 changes 3 of 5 clips); at f16 none of the English ones.
                return (.f16, "Whisper decoder: f16 (8-bit weights change transcripts)")
            case .detokLinear: return q(8, "detokenizer: 8-bit")
            case .positions: return (.f32, "positions: f32")
            case .codebook: return (.f32, "VQ codebook: f32 (exact argmin)")
            case .convolution: return (.f16, "convolution: f16")
            case .vocoder: return (.f16, "vocoder: f16")
            case .vector: return (.f32, "small vector: f32")
            }
        }
    }
}

/// Shell-style glob (`*`, `?`, `[...]`) over the whole name, via fnmatch(3).
public func globMatch(_ pattern: String, _ name: String) -> Bool {
    fnmatch(pattern, name, 0) == 0
}
