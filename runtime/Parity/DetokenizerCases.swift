import Foundation
import KAF

/// The detokenizer's golden stages (formats/GOLDEN.md: dit, vocoder, detok), with the recorded noise.
/// Bounds by the stored type of the DiT's linears (mel) and of the vocoder's convolutions (samples):
/// f32 weights must match the official f32 run (mel and samples max |Δ| ≤ 1e-3, SNR ≥ 60 dB);
/// otherwise the mel max |Δ| ≤ 0.02 (16-bit) / 0.05 (q8) / 0.2 (q4) and the samples' SNR ≥ 40 dB
/// (16-bit) / 30 dB (quantized) — loose drift bounds (the tiny release at --q8: mel 0.015, 81 dB).
extension Parity {
    static func weightType(_ kaf: KAFFile, _ name: String) -> DType? { kaf.entry(name)?.dtype }

    static func melBound(_ kaf: KAFFile) -> Double {
        switch weightType(kaf, "dit.blocks.0.mlp.fc1.weight") {
        case .f32?, nil: return 1e-3
        case .f16?, .bf16?: return 0.02
        case let t? where t.isQuantized && t.traits.quantBits == 8: return 0.05
        default: return 0.2
        }
    }

    /// (max |Δ| bound, SNR bound) of the samples, by the weaker of the two components.
    static func waveBounds(_ kaf: KAFFile, withDiT: Bool) -> (maxAbs: Double, snr: Double) {
        let types =
            [weightType(kaf, "vocoder.conv_pre.weight")]
            + (withDiT ? [weightType(kaf, "dit.blocks.0.mlp.fc1.weight")] : [])
        if types.allSatisfy({ $0 == nil || $0 == .f32 }) { return (1e-3, 60) }
        if types.allSatisfy({ $0 == nil || $0 == .f32 || $0 == .f16 || $0 == .bf16 }) { return (.infinity, 40) }
        return (.infinity, 30)
    }

    /// A signal against its reference: max |Δ| and SNR in dB (10·log10 Σw² / Σ(g−w)²).
    static func compareSignal(_ name: String, got: [Float], want: [Float], maxAbs: Double, snr: Double) -> Metric {
        var m = Metric(name: name)
        m.rows = want.count
        var s = 0.0, n = 0.0
        for (g, w) in zip(got, want) {
            m.maxAbs = max(m.maxAbs, Double(abs(g - w)))
            s += Double(w) * Double(w)
            n += Double(g - w) * Double(g - w)
        }
        m.snrDB = got.count == want.count ? 10 * log10(max(s, 1e-30) / max(n, 1e-30)) : -.infinity
        m.pass = got.count == want.count && m.maxAbs <= maxAbs && m.snrDB! >= snr
        return m
    }

    static func ints(_ g: SafetensorsFile, _ name: String) throws -> [Int] {
        try g.tensor(named: name).int64s().map { Int($0) }
    }

    static func metaInt(_ g: SafetensorsFile, _ key: String, path: String) throws -> Int {
        guard let v = g.metadata[key].flatMap({ Int($0) }) else {
            throw FormatError(path, "metadata '\(key)' missing or not an integer")
        }
        return v
    }

    /// Stage dit: one chunk from a fresh state (`in.codes` ×upsample, `in.noise`), no look-ahead.
    static func runDiT(_ kaf: KAFFile, _ g: SafetensorsFile, path: String, threads: Int) throws -> CaseResult {
        let codes = try ints(g, "in.codes"), noise = try g.tensor(named: "in.noise").floats()
        var s = Detokenizer.Settings()
        s.upsample = try metaInt(g, "upsample_factor", path: path)
        s.odeSteps = try metaInt(g, "ode_steps", path: path)
        (s.chunkTokens, s.firstChunkTokens, s.lookAheadTokens) = (codes.count, codes.count, 0)
        let d = try Detokenizer(file: kaf, threads: threads, settings: s)
        guard noise.count == codes.count * s.upsample * d.mels else {
            throw FormatError(
                path, "in.noise holds \(noise.count) values, not \(codes.count * s.upsample) frames × \(d.mels)")
        }
        var n = RecordedNoise([noise])
        _ = try d.generateMel(codes, isFinal: true, noise: &n)
        var t = Tolerance()
        (t.maxAbs, t.minCosine, t.minTop1) = (melBound(kaf), 0, 0)
        return CaseResult(
            path: path, stage: "dit",
            metrics: [
                compare(
                    "mel", got: Array(d.chunkMel), want: try g.tensor(named: "out.mel").floats(), cols: d.mels, tol: t)
            ])
    }

    /// Stage vocoder: `in.mel` [F, mels] → `out.wav` [hop·F].
    static func runVocoder(_ kaf: KAFFile, _ g: SafetensorsFile, path: String, threads: Int) throws -> CaseResult {
        let mel = try g.tensor(named: "in.mel")
        guard mel.shape.count == 2, mel.shape[0] >= 1 else {
            throw FormatError(path, "in.mel is \(mel.shape), not [F, mels]")
        }
        let voc = try Vocoder(file: kaf, threads: threads, maxFrames: mel.shape[0])
        guard mel.shape[1] == voc.config.numMels else {
            throw FormatError(path, "in.mel has \(mel.shape[1]) bins, the vocoder reads \(voc.config.numMels)")
        }
        var got = [Float](repeating: 0, count: mel.shape[0] * voc.hopLength)
        try mel.floats().withUnsafeBufferPointer { voc(mel: $0.baseAddress!, frames: mel.shape[0], into: &got) }
        let b = waveBounds(kaf, withDiT: false)
        return CaseResult(
            path: path, stage: "vocoder",
            metrics: [
                compareSignal(
                    "wav", got: got, want: try g.tensor(named: "out.wav").floats(), maxAbs: b.maxAbs, snr: b.snr)
            ])
    }

    /// Stage detok: streaming end to end with the recorded noise of every chunk; each chunk's samples
    /// (and mel, when stored) and the whole waveform.
    /// A detok golden's streaming settings (chunking, look-ahead, ODE steps, cache and position windows).
    static func detokSettings(_ g: SafetensorsFile, path: String) throws -> Detokenizer.Settings {
        var s = Detokenizer.Settings()
        s.chunkTokens = try metaInt(g, "chunk_tokens", path: path)
        s.firstChunkTokens = (try? metaInt(g, "first_chunk_tokens", path: path)) ?? s.chunkTokens
        s.lookAheadTokens = try metaInt(g, "look_ahead_tokens", path: path)
        s.upsample = try metaInt(g, "upsample_factor", path: path)
        s.odeSteps = try metaInt(g, "ode_steps", path: path)
        if let v = try? metaInt(g, "max_kv_cache_tokens", path: path) { s.maxCacheFrames = v }
        if let v = try? metaInt(g, "max_pos_size", path: path) { s.maxPositions = v }
        return s
    }

    static func runDetok(_ kaf: KAFFile, _ g: SafetensorsFile, path: String, threads: Int) throws -> CaseResult {
        let s = try detokSettings(g, path: path)
        let codes = try ints(g, "in.codes")
        var noise: [[Float]] = []
        while let t = g[String(format: "in.noise.%03d", noise.count)] { noise.append(try t.floats()) }
        let d = try Detokenizer(file: kaf, threads: threads, settings: s)
        var n = RecordedNoise(noise)
        var wav: [Float] = [], mel: [Float] = [], wantMel: [Float] = []
        var chunkSamples: [Int] = [], wantChunkSamples: [Int] = []
        var start = 0, k = 0
        while start < codes.count {
            let end = min(codes.count, start + (k == 0 ? s.firstChunkTokens : s.chunkTokens))
            var piece = 0
            try d.push(Array(codes[start ..< end]), isFinal: end == codes.count, noise: &n) {
                wav += $0
                piece += $0.count
            }
            chunkSamples.append(piece)
            let tag = String(format: "%03d", k)
            if let w = g["out.wav." + tag] { wantChunkSamples.append(w.shape.reduce(1, *)) }
            if let m = g["out.mel." + tag] {
                mel += d.chunkMel
                wantMel += try m.floats()
            }
            start = end
            k += 1
        }
        var t = Tolerance()
        (t.maxAbs, t.minCosine, t.minTop1) = (melBound(kaf), 0, 0)
        let b = waveBounds(kaf, withDiT: true)
        var metrics = [
            compareSignal("wav", got: wav, want: try g.tensor(named: "out.wav").floats(), maxAbs: b.maxAbs, snr: b.snr)
        ]
        if !wantChunkSamples.isEmpty {
            var m = compareSequence("chunk_samples", got: chunkSamples, want: wantChunkSamples, tol: Tolerance())
            m.pass = chunkSamples == wantChunkSamples
            metrics.append(m)
        }
        if !wantMel.isEmpty {
            var m = Metric(name: "mel")
            m.pass = false  // a different number of frames
            metrics.append(
                wantMel.count == mel.count ? compare("mel", got: mel, want: wantMel, cols: d.mels, tol: t) : m)
        }
        return CaseResult(path: path, stage: "detok", metrics: metrics)
    }
}
