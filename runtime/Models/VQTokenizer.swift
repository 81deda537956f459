import COpenBLAS
import KAF

/// GLM-4-Voice's speech tokenizer (docs/ARCHITECTURE.md §1.8) as Kimi-Audio calls it: 16 kHz samples
/// → the VQ log-mel pieces (LogMel.vqPieces) → the encoder stack up to `quantize_position`
/// (WhisperEncoder, causal convolutions, block-causal attention over the valid frames) → average
/// pooling ×4 → the nearest codebook row, d(x, c) = ‖c‖² + ‖x‖² − 2·x·c in f32, first index on ties
/// → 12.5 Hz codes (raw, 0-based), ⌈L/1280⌉ per piece.
public final class VQTokenizer {
    public let config: VQConfig
    let encoder: WhisperEncoder
    let frontEnd: LogMel
    let codebook: [Float]
    let codebookNorms: [Float]
    let hidden, pooled, dots: UnsafeMutablePointer<Float>

    public var threadCount: Int { encoder.threadCount }

    public init(file: KAFFile, threads: Int = 0) throws {
        guard let json = file.meta["components"]?["vq"]?["config"] else {
            throw FormatError(file.path, "no VQ tokenizer in this file (components.vq missing)")
        }
        let c = try VQConfig(json: json, file: file.path)
        guard c.poolingKernelSize == 4, c.poolingType == "avg", c.poolingPosition == c.quantizePosition else {
            throw FormatError(file.path, "vq: only average pooling by 4 at the quantizing layer is implemented")
        }
        let table = VQTensors(c)
        config = c
        encoder = try WhisperEncoder(
            file: file, table: table.encoder, convPadding: c.causalConvolution ? (2, 0) : (1, 1),
            attentionBlock: c.quantizeCausalBlockSize, threads: threads)
        frontEnd = try LogMel(file: file)
        let book = try WeightLoader(file).values(table.codebook)
        let d = c.encoder.dModel, v = c.quantizeVocabSize
        codebook = book
        codebookNorms = (0 ..< v).map { k in (0 ..< d).reduce(Float(0)) { $0 + book[k * d + $1] * book[k * d + $1] } }
        let a = encoder.compute.arena
        hidden = a.floats(encoder.frames * d)
        pooled = a.floats((encoder.frames / 4 + 1) * d)
        dots = a.floats((encoder.frames / 4 + 1) * v)
    }

    /// The codes of `samples` (16 kHz mono), the pieces' codes concatenated; `onPiece` sees each
    /// finished piece (done, total).
    public func callAsFunction(_ samples: [Float], onPiece: (Int, Int) -> Void = { _, _ in }) -> [Int] {
        var out: [Int] = []
        let pieces = frontEnd.vqPieces(samples)
        for (k, p) in pieces.enumerated() {
            // The attention mask: one flag per 160 samples (frame f is valid when 160·f < L), taken
            // at every second frame for the 50 Hz layers.
            let validMel = (p.samples + LogMel.hop - 1) / LogMel.hop
            let valid50 = (validMel + 1) / 2
            out += p.mel.withUnsafeBufferPointer {
                codes(mel: $0.baseAddress!, melFrames: p.frames, valid: valid50, tokens: p.tokens)
            }
            onPiece(k + 1, pieces.count)
        }
        return out
    }

    /// Codes of one piece: `mel` [mels, melFrames], `valid` frames at 50 Hz, the first `tokens` kept.
    func codes(mel: UnsafePointer<Float>, melFrames: Int, valid: Int, tokens: Int) -> [Int] {
        let d = config.encoder.dModel, v = config.quantizeVocabSize
        encoder.encode(mel: mel, melFrames: melFrames, validFrames: valid, into: hidden)
        let T = melFrames / 2, n = (T + 3) / 4
        // AvgPool1d(4) after zero-padding the time axis to a multiple of 4.
        for i in 0 ..< n {
            for j in 0 ..< d {
                var s: Float = 0
                for u in 0 ..< 4 where 4 * i + u < T { s += hidden[(4 * i + u) * d + j] }
                pooled[i * d + j] = s / 4
            }
        }
        // dots[i][k] = x_i · c_k.
        cblas_sgemm(
            CblasRowMajor, CblasNoTrans, CblasTrans, Int32(n), Int32(v), Int32(d), 1, pooled, Int32(d), codebook,
            Int32(d), 0, dots, Int32(v))
        return (0 ..< min(tokens, n)).map { i in
            let x = pooled + i * d
            var xsq: Float = 0
            for j in 0 ..< d { xsq += x[j] * x[j] }
            var best = 0, bestD = Float.infinity
            for k in 0 ..< v {
                let dist = (codebookNorms[k] + xsq) - 2 * dots[i * v + k]
                if dist < bestD { (best, bestD) = (k, dist) }
            }
            return best
        }
    }
}
