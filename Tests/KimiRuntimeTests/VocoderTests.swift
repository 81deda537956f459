import Foundation
import KAF
import Testing

@testable import KimiConvert
@testable import KimiRuntime

/// The vocoder's kernels against their scalar twins, and the vocoder against the official BigVGAN
/// (goldens by scripts/reference/make_detok_goldens.py).
@Suite struct VocoderTests {
    /// Dilated "same" convolution: im2col + product vs conv1d_ref.
    @Test(arguments: [(1, 3), (3, 5), (5, 11), (2, 4)])
    func dilatedConvolutionMatchesTheReference(dilation d: Int, kernel k: Int) {
        var rng = KernelRNG(seed: 11)
        let buf = KernelBuffers()
        let (T, C, O) = (29, 6, 5)
        let p = (k * d - d) / 2
        let x = buf.random(T * C, &rng), w = buf.random(O * C * k, &rng), b = buf.random(O, &rng)
        let out = conv1dFrames(T, kernel: k, stride: 1, dilation: d, padLeft: p, padRight: p)
        let cols = buf.floats(out * C * k), got = buf.floats(out * O), want = buf.floats(out * O)
        // Two frame ranges: the second block's rows start at row 0 of its own buffer.
        let split = out / 3
        im2col1d(
            x, frames: T, channels: C, kernel: k, stride: 1, dilation: d, padLeft: p, padRight: p, into: cols,
            frameRange: 0 ..< split)
        im2col1d(
            x, frames: T, channels: C, kernel: k, stride: 1, dilation: d, padLeft: p, padRight: p,
            into: cols + split * C * k, frameRange: split ..< out)
        for t in 0 ..< out {
            for o in 0 ..< O {
                var acc = b[o]
                for i in 0 ..< C * k { acc += w[o * C * k + i] * cols[t * C * k + i] }
                got[t * O + o] = acc
            }
        }
        conv1d_ref(
            x, frames: T, channels: C, weight: w, bias: b, outChannels: O, kernel: k, stride: 1, dilation: d,
            padLeft: p,
            padRight: p, into: want)
        #expect(out == T + 2 * p - d * (k - 1))
        let err = (0 ..< out * O).map { abs(got[$0] - want[$0]) }.max()!
        #expect(err <= 1e-5, "dilation \(d) kernel \(k): max |Δ| \(err)")
    }

    /// Transposed convolution: the [out·k, in] product + gather vs convTranspose1d_ref, at the vocoder's
    /// (kernel, stride) pairs.
    @Test(arguments: [(9, 5), (4, 2), (5, 3)])
    func transposedConvolutionMatchesTheReference(kernel k: Int, stride u: Int) {
        var rng = KernelRNG(seed: 12)
        let buf = KernelBuffers()
        let (T, C, O) = (13, 7, 4)
        let p = (k - u) / 2
        let x = buf.random(T * C, &rng), w = buf.random(C * O * k, &rng), b = buf.random(O, &rng)
        let N = convTranspose1dFrames(T, kernel: k, stride: u, padding: p)
        #expect(N == T * u)
        let Z = buf.floats(T * O * k), got = buf.floats(N * O), want = buf.floats(N * O)
        for t in 0 ..< T {
            for o in 0 ..< O {
                for j in 0 ..< k {
                    var acc: Float = 0
                    for i in 0 ..< C { acc += w[(i * O + o) * k + j] * x[t * C + i] }
                    Z[t * O * k + o * k + j] = acc
                }
            }
        }
        convTransposeGather(
            Z, frames: T, outChannels: O, kernel: k, stride: u, padding: p, bias: b, into: got, frameRange: 0 ..< 5)
        convTransposeGather(
            Z, frames: T, outChannels: O, kernel: k, stride: u, padding: p, bias: b, into: got, frameRange: 5 ..< N)
        convTranspose1d_ref(
            x, frames: T, channels: C, weight: w, bias: b, outChannels: O, kernel: k, stride: u, padding: p, into: want)
        let err = (0 ..< N * O).map { abs(got[$0] - want[$0]) }.max()!
        #expect(err <= 1e-5, "kernel \(k) stride \(u): max |Δ| \(err)")
    }

    /// The anti-aliased SnakeBeta (both passes, 8-lane and scalar channels, the clamped edges) vs the
    /// torch modules written out; large arguments check the sin² range reduction.
    @Test(arguments: [(1, 1), (3, 8), (40, 11), (17, 16)])
    func antiAliasedSnakeMatchesTheReference(frames T: Int, channels C: Int) {
        var rng = KernelRNG(seed: 13)
        let buf = KernelBuffers()
        let x = buf.random(T * C, &rng, scale: 3)
        if T * C > 4 {
            x[3] = 250
            x[4] = -1234.5
        }
        let alpha = buf.floats(C), invBeta = buf.floats(C), f = buf.random(12, &rng), g = buf.random(12, &rng)
        for c in 0 ..< C {
            alpha[c] = exp(rng.normal(0.5))
            invBeta[c] = 1 / (exp(rng.normal(0.5)) + 1e-9)
        }
        let a = buf.floats(2 * T * C), got = buf.floats(T * C), want = buf.floats(T * C)
        snakeUpsampled(
            x, frames: T, channels: C, alpha: alpha, invBeta: invBeta, filter: f, into: a, frames: 0 ..< T / 2)
        snakeUpsampled(
            x, frames: T, channels: C, alpha: alpha, invBeta: invBeta, filter: f, into: a, frames: T / 2 ..< T)
        lowpassDownsampled(a, frames: T, channels: C, filter: g, into: got, frames: 0 ..< T)
        antiAliasedSnake_ref(x, frames: T, channels: C, alpha: alpha, invBeta: invBeta, up: f, down: g, into: want)
        var worst: Float = 0
        for i in 0 ..< T * C { worst = max(worst, abs(got[i] - want[i]) / max(1, abs(want[i]))) }
        #expect(worst <= 2e-5, "T \(T) C \(C): worst relative error \(worst)")
    }
}

/// The DiT, the vocoder and the streaming detokenizer of the tiny release against the official
/// code (float32; goldens by scripts/reference/make_detok_goldens.py).
@Suite(.serialized) struct DetokenizerTests {
    static func golden(_ name: String) throws -> SafetensorsFile {
        try SafetensorsFile(path: ModelSummaryTests.fixtures + "/golden/\(name).safetensors")
    }
    static func kaf(_ mode: PrecisionPolicy.Mode) throws -> KAFFile { try ParityTests.converted("tiny-release", mode) }

    static func maxAbs(_ a: [Float], _ b: [Float]) -> Float { zip(a, b).map { abs($0 - $1) }.max() ?? .infinity }
    static func snr(_ got: [Float], _ want: [Float]) -> Double {
        let s = want.reduce(0.0) { $0 + Double($1) * Double($1) }
        let n = zip(got, want).reduce(0.0) { $0 + Double($1.0 - $1.1) * Double($1.0 - $1.1) }
        return 10 * log10(s / max(n, 1e-30))
    }

    @Test func vocoderMatchesBigVGAN() throws {
        let g = try Self.golden("vocoder_tiny_f32")
        let mel = try g.tensor(named: "in.mel"), want = try g.tensor(named: "out.wav").floats()
        let F = mel.shape[0]
        let voc = try Vocoder(file: try Self.kaf(.float(.f32)), threads: 2, maxFrames: F)
        var got = [Float](repeating: .nan, count: F * voc.hopLength)
        try mel.floats().withUnsafeBufferPointer { voc(mel: $0.baseAddress!, frames: F, into: &got) }
        #expect(got.count == want.count)
        let err = Self.maxAbs(got, want), db = Self.snr(got, want)
        print("vocoder f32: max |Δ| \(err), SNR \(db) dB")
        #expect(err <= 1e-3 && db >= 60, "max |Δ| \(err), SNR \(db) dB")
    }

    /// One velocity evaluation from a fresh state, then the whole ODE of one chunk (no look-ahead).
    @Test func ditMatchesTheOfficialFlowMatching() throws {
        let g = try Self.golden("dit_tiny_f32")
        let codes = try g.tensor(named: "in.codes").int64s().map { Int($0) }
        let noise = try g.tensor(named: "in.noise").floats()
        let up = Int(g.metadata["upsample_factor"] ?? "") ?? 0, steps = Int(g.metadata["ode_steps"] ?? "") ?? 0
        let N = codes.count * up
        let dit = try DiT(file: try Self.kaf(.float(.f32)), threads: 2, maxFrames: N, maxCache: 0)
        let frameCodes = codes.flatMap { Array(repeating: $0, count: up) }
        var v = [Float](repeating: .nan, count: N * 80)
        dit.velocity(x: noise, codes: frameCodes, frames: N, tau: 0, start: 0, into: &v)
        let ev = Self.maxAbs(v, try g.tensor(named: "out.velocity0").floats())
        #expect(ev <= 1e-4, "velocity at τ 0: max |Δ| \(ev)")

        var s = Detokenizer.Settings()
        (s.chunkTokens, s.firstChunkTokens, s.lookAheadTokens, s.odeSteps) = (codes.count, codes.count, 0, steps)
        #expect(Detokenizer.linspace(steps).map { Int($0 * 1000) }.count == steps)
        let tau = Detokenizer.linspace(steps).dropLast().map { Int($0 * 1000) }
        #expect(
            "\(tau)"
                == g.metadata["timesteps"]?.replacingOccurrences(of: " ", with: "").replacingOccurrences(
                    of: ",", with: ", "))
        let d = try Detokenizer(file: try Self.kaf(.float(.f32)), threads: 2, settings: s)
        var n = RecordedNoise([noise])
        let frames = try d.generateMel(codes, isFinal: true, noise: &n)
        #expect(frames == N)
        let err = Self.maxAbs(Array(d.chunkMel), try g.tensor(named: "out.mel").floats())
        print("dit f32: mel max |Δ| \(err)")
        #expect(err <= 1e-3, "mel max |Δ| \(err)")
    }

    /// Streaming end to end as kimia.py's detokenize_audio: per chunk, the DiT's mel and the samples
    /// returned (first half, cross-faded middles, the final remainder), with the reference's noise.
    /// The window case trims the KV cache to 16 frames and restarts positions at 64.
    @Test(arguments: ["detok_tiny_f32", "detok_tiny_window_f32"])
    func streamingMatchesTheOfficialDetokenizer(_ name: String) throws {
        let r = try Self.stream(name, .float(.f32))
        #expect(r.mel <= 1e-3 && r.wav <= 1e-3 && r.snr >= 60, "mel \(r.mel), wav \(r.wav), \(r.snr) dB")
    }

    /// The same from a `--q8` file (the DiT's linears q8, the vocoder f16; `--q4` stores the
    /// detokenizer the same way, docs/ARCHITECTURE.md §6). Measured: mel max |Δ| 0.015, wav SNR 81 dB.
    @Test func quantizedStreamingStaysClose() throws {
        let r = try Self.stream("detok_tiny_f32", .quantized(bits: 8, group: 32))
        #expect(r.mel <= 0.05 && r.snr >= 60, "mel \(r.mel), wav \(r.wav), \(r.snr) dB")
    }

    /// Runs a detok golden through `mode`'s file: worst per-chunk mel and sample errors, SNR of the whole wav.
    static func stream(_ name: String, _ mode: PrecisionPolicy.Mode) throws -> (mel: Float, wav: Float, snr: Double) {
        let g = try Self.golden(name)
        func meta(_ k: String) -> Int { Int(g.metadata[k] ?? "") ?? -1 }
        let s = try Parity.detokSettings(g, path: name)
        let codes = try g.tensor(named: "in.codes").int64s().map { Int($0) }
        let chunks = meta("chunks")
        let noise = try (0 ..< chunks).map { try g.tensor(named: String(format: "in.noise.%03d", $0)).floats() }
        let d = try Detokenizer(file: try Self.kaf(mode), threads: 2, settings: s)
        var n = RecordedNoise(noise)
        var all: [Float] = [], start = 0, k = 0
        var worstMel: Float = 0, worstWav: Float = 0
        while start < codes.count {
            let size = k == 0 ? s.firstChunkTokens : s.chunkTokens
            let end = min(codes.count, start + size)
            var piece: [Float] = []
            try d.push(Array(codes[start ..< end]), isFinal: end == codes.count, noise: &n) { piece += $0 }
            let tag = String(format: "%03d", k)
            worstMel = max(worstMel, Self.maxAbs(Array(d.chunkMel), try g.tensor(named: "out.mel." + tag).floats()))
            let want = try g.tensor(named: "out.wav." + tag).floats()
            #expect(piece.count == want.count, "chunk \(k): \(piece.count) samples, the reference \(want.count)")
            worstWav = max(worstWav, Self.maxAbs(piece, want))
            all += piece
            start = end
            k += 1
        }
        #expect(k == chunks)
        let want = try g.tensor(named: "out.wav").floats()
        let db = Self.snr(all, want)
        print("\(name) \(mode): mel max |Δ| \(worstMel), wav max |Δ| \(worstWav), SNR \(db) dB")
        return (worstMel, worstWav, db)
    }

    /// kimi-parity's detokenizer stages on the four goldens: f32 passes the exact bounds, --q8 the
    /// drift bounds, and every chunk returns as many samples as the reference's.
    @Test func parityStagesPass() throws {
        for mode in [PrecisionPolicy.Mode.float(.f32), .quantized(bits: 8, group: 32)] {
            for name in ["dit_tiny_f32", "vocoder_tiny_f32", "detok_tiny_window_f32"] {
                let r = try Parity.run(
                    try Self.kaf(mode), golden: ModelSummaryTests.fixtures + "/golden/\(name).safetensors", threads: 2)
                #expect(r.pass, "\(mode) \(name): \(r.metrics.map(\.json))")
                if name.hasPrefix("detok") {
                    #expect(r.metrics.map(\.name) == ["wav", "chunk_samples", "mel"])
                }
            }
        }
    }
}
