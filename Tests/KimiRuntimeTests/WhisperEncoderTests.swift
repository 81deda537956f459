import Foundation
import Testing

@testable import KAF
@testable import KimiConvert
@testable import KimiRuntime

/// The Whisper encoder against Kimi-Audio's own (whisper_Lv3/modeling_whisper.py, float32; golden
/// by scripts/reference/make_whisper_goldens.py) on the tiny release, over real speech.
@Suite(.serialized) struct WhisperEncoderTests {
    static let golden = ModelSummaryTests.fixtures + "/golden/whisper_tiny_encoder_f32.safetensors"

    static func run(_ mode: PrecisionPolicy.Mode) throws -> (
        got: [Float], want: [Float], features: [Float], d: Int, n: Int
    ) {
        let g = try SafetensorsFile(path: golden)
        let enc = try WhisperEncoder(file: try ParityTests.convert("tiny-release", mode))
        let mel = try g.tensor(named: "in.mel").floats()
        #expect(mel.count == enc.config.melBins * enc.inFrames)
        var out = [Float](repeating: 0, count: enc.frames * enc.config.dModel)
        enc(mel: mel, into: &out)
        let n = try #require(Int(g.metadata["tokens"] ?? ""))
        return (
            out, try g.tensor(named: "out.encoder").floats(), try g.tensor(named: "out.features").floats(),
            enc.config.dModel, n
        )
    }

    /// f32 weights: the last hidden state within 1e-4 of the official f32 run (measured 7.2e-7),
    /// and Kimi's features (the first 4n frames read as [n, 4d]) within the same bound.
    @Test func f32MatchesKimisEncoder() throws {
        let r = try Self.run(.float(.f32))
        #expect(r.got.count == r.want.count)
        let d = zip(r.got, r.want).reduce(Float(0)) { max($0, abs($1.0 - $1.1)) }
        print("whisper encoder f32: max |Δ| \(d)")
        #expect(d <= 1e-4, "max |Δ| \(d)")
        #expect(r.features.count == r.n * 4 * r.d)
        let f = zip(r.got.prefix(r.features.count), r.features).reduce(Float(0)) { max($0, abs($1.0 - $1.1)) }
        #expect(f <= 1e-4, "features max |Δ| \(f)")
    }

    /// The default policy (encoder linears q8 `_r8`, convolutions f16): per-frame cosine ≥ 0.999
    /// (measured 0.9999999 on the tiny model).
    @Test func q8StaysClose() throws {
        let r = try Self.run(.quantized(bits: 8, group: 32))
        var worst = 1.0
        for t in 0 ..< r.want.count / r.d {
            var dot = 0.0, a = 0.0, b = 0.0
            for i in 0 ..< r.d {
                let x = Double(r.got[t * r.d + i]), y = Double(r.want[t * r.d + i])
                dot += x * y
                a += x * x
                b += y * y
            }
            worst = min(worst, dot / (a.squareRoot() * b.squareRoot()))
        }
        print("whisper encoder q8: worst frame cosine \(worst)")
        #expect(worst >= 0.999, "worst frame cosine \(worst)")
    }

    /// im2col + the matrix product against the convolution written out.
    @Test func convolutionMatchesTheReference() {
        var rng = SplitMix64(seed: 3)
        let (T, C, O, k) = (37, 5, 8, 3)
        let x = (0 ..< T * C).map { _ in Float(rng.nextDouble() - 0.5) }
        let w = (0 ..< O * C * k).map { _ in Float(rng.nextDouble() - 0.5) }
        let b = (0 ..< O).map { _ in Float(rng.nextDouble()) }
        for s in [1, 2] {
            let out = conv1dFrames(T, kernel: k, stride: s, padLeft: 1, padRight: 1)
            var cols = [Float](repeating: 0, count: out * C * k)
            im2col1d(x, frames: T, channels: C, kernel: k, stride: s, padLeft: 1, padRight: 1, into: &cols)
            var got = [Float](repeating: 0, count: out * O), want = got
            for t in 0 ..< out {
                for o in 0 ..< O {
                    var acc: Float = b[o]
                    for i in 0 ..< C * k { acc += w[o * C * k + i] * cols[t * C * k + i] }
                    got[t * O + o] = acc
                }
            }
            conv1d_ref(
                x, frames: T, channels: C, weight: w, bias: b, outChannels: O, kernel: k, stride: s, padLeft: 1,
                padRight: 1, into: &want)
            #expect(out == (s == 1 ? 37 : 19))
            #expect(zip(got, want).allSatisfy { abs($0 - $1) <= 1e-5 }, "stride \(s)")
        }
    }
}
