import Dispatch
import Foundation
import KAF

/// Where the DiT's starting noise x₀ ~ N(0, I) comes from: seeded (`SeededNoise`), or the tensors a
/// golden case recorded, so parity with the reference is exact.
public protocol DetokenizerNoise {
    /// Fills `count` values for a chunk of `count / mels` frames.
    mutating func fill(_ p: UnsafeMutablePointer<Float>, count: Int) throws
}

/// Standard normal values from SplitMix64 (Box–Muller), reproducible from `seed`.
public struct SeededNoise: DetokenizerNoise {
    var rng: SplitMix64
    public init(seed: UInt64) { rng = SplitMix64(seed: seed) }
    public mutating func fill(_ p: UnsafeMutablePointer<Float>, count: Int) {
        var i = 0
        while i < count {
            let u1 = max(rng.nextDouble(), 1e-300), u2 = rng.nextDouble()
            let r = (-2 * Foundation.log(u1)).squareRoot()
            p[i] = Float(r * Foundation.cos(2 * .pi * u2))
            if i + 1 < count { p[i + 1] = Float(r * Foundation.sin(2 * .pi * u2)) }
            i += 2
        }
    }
}

/// Noise given chunk by chunk (a golden's `in.noise.NNN`).
public struct RecordedNoise: DetokenizerNoise {
    var chunks: [[Float]]
    var next = 0
    public init(_ chunks: [[Float]]) { self.chunks = chunks }
    public mutating func fill(_ p: UnsafeMutablePointer<Float>, count: Int) throws {
        guard next < chunks.count, chunks[next].count == count else {
            throw FormatError("noise", "recorded noise chunk \(next) missing or not \(count) values")
        }
        chunks[next].withUnsafeBufferPointer { p.update(from: $0.baseAddress!, count: count) }
        next += 1
    }
}

/// Audio codes → 24 kHz waveform in chunks, as Kimi-Audio streams it (docs/ARCHITECTURE.md §1.9,
/// §1.10; kimia_infer/api/kimia.py `detokenize_audio`, detokenizer/__init__.py
/// `detokenize_streaming`, semantic_fm_prefix_streaming.py `infer_chunk`):
/// * each chunk's codes ×4 (50 Hz), after the look-ahead frames the previous chunk held back;
/// * the Euler ODE over `torch.linspace(0, 1, odeSteps)` as torchdyn walks it, timestep ⌊1000·t⌋;
/// * a non-final chunk holds back its last `lookAhead`·4 frames, then one more pass at τ = 999 on the
///   clean frames it keeps makes their keys and values the DiT's cache; positions advance by the
///   frames kept and restart at 0 (empty cache) before they would pass the RoPE table;
/// * the vocoder runs on the previous half chunk's mel + this chunk's; the first chunk returns its
///   first half, later ones cross-fade with the previous tail (periodic Hamming window), the final
///   chunk returns everything it made.
public final class Detokenizer {
    public struct Settings: Sendable {
        public var chunkTokens = 30, firstChunkTokens = 30, lookAheadTokens = 12, upsample = 4, odeSteps = 30
        public var maxCacheFrames = 900
        /// nil: the DiT's RoPE table (4096).
        public var maxPositions: Int? = nil
        public init() {}
    }

    public let settings: Settings
    public let dit: DiT
    public let vocoder: Vocoder
    public let mels: Int
    let maxPositions: Int
    let melMean, melStd: Float
    /// torch.linspace(0, 1, odeSteps) in f32.
    let grid: [Float]
    // state
    var startPosition = 0
    var heldCodes: [Int] = []  // look-ahead conditions (frames) held back by the last chunk
    var preMel: [Float] = [], preWav: [Float] = []
    var first = true
    // buffers
    let buffers: ScratchArena
    let x, v, mel, concat, wav: UnsafeMutablePointer<Float>
    let frameCodes: UnsafeMutablePointer<Int>
    let maxDiTFrames: Int

    public init(file: KAFFile, threads: Int = 0, settings s: Settings = Settings()) throws {
        guard s.chunkTokens >= 1, s.firstChunkTokens >= 1, s.lookAheadTokens >= 0, s.upsample >= 1,
            (2 ... 1000).contains(s.odeSteps), s.chunkTokens <= 4096, s.firstChunkTokens <= 4096,
            s.lookAheadTokens < min(s.chunkTokens, s.firstChunkTokens), s.upsample <= 16
        else {
            throw FormatError(
                file.path,
                "detokenizer settings out of range (chunk \(s.chunkTokens), first \(s.firstChunkTokens), look-ahead \(s.lookAheadTokens) < chunk, ODE steps \(s.odeSteps) in 2...1000)"
            )
        }
        settings = s
        let frames = (max(s.chunkTokens, s.firstChunkTokens) + s.lookAheadTokens) * s.upsample
        maxDiTFrames = frames
        dit = try DiT(file: file, threads: threads, maxFrames: frames, maxCache: s.maxCacheFrames)
        vocoder = try Vocoder(file: file, threads: threads, maxFrames: 2 * frames)
        let c = dit.config
        mels = c.inputSize
        guard vocoder.config.numMels == mels else {
            throw FormatError(
                file.path, "the DiT makes \(mels) mel bins but the vocoder reads \(vocoder.config.numMels)")
        }
        maxPositions = min(s.maxPositions ?? dit.positions, dit.positions)
        let normalized = c.normalizeMel ?? false
        melMean = normalized ? Float(c.melMean ?? 0) : 0
        melStd = normalized ? Float(c.melStd ?? 1) : 1
        grid = Self.linspace(s.odeSteps)
        let a = ScratchArena()
        buffers = a
        (x, v, mel) = (a.floats(frames * mels), a.floats(frames * mels), a.floats(frames * mels))
        concat = a.floats(2 * frames * mels)
        wav = a.floats(2 * frames * vocoder.hopLength)
        frameCodes = a.bytes(frames * MemoryLayout<Int>.stride).bindMemory(to: Int.self, capacity: frames)
    }

    /// Samples per code (1920 at 24 kHz).
    public var samplesPerCode: Int { settings.upsample * vocoder.hopLength }

    /// Start a new utterance.
    public func reset() {
        dit.reset()
        startPosition = 0
        heldCodes = []
        preMel = []
        preWav = []
        first = true
    }

    /// Codes of one chunk (raw, 0..<semantic vocabulary) → `emit` gets the samples ready now.
    /// `isFinal` ends the utterance (everything left is emitted, the state is reset).
    public func push(
        _ codes: [Int], isFinal: Bool, noise: inout some DetokenizerNoise,
        emit: (UnsafeBufferPointer<Float>) throws -> Void
    ) throws {
        let t0 = DispatchTime.now().uptimeNanoseconds
        let frames = try generateMel(codes, isFinal: isFinal, noise: &noise)
        let t1 = DispatchTime.now().uptimeNanoseconds
        let piece = vocode(frames: frames, isFinal: isFinal)
        let t2 = DispatchTime.now().uptimeNanoseconds
        ditSeconds += Double(t1 - t0) / 1e9
        vocoderSeconds += Double(t2 - t1) / 1e9
        try emit(piece)
        first = false
        if isFinal { reset() }
    }

    /// Seconds spent in the DiT and in the vocoder since the detokenizer was made.
    public private(set) var ditSeconds = 0.0, vocoderSeconds = 0.0

    /// The mel (de-normalised, [frames, mels]) the last `generateMel` made.
    public private(set) var chunkMel = UnsafeBufferPointer<Float>(start: nil, count: 0)

    /// The DiT half of `push`: the chunk's mel into `chunkMel`; returns its frame count.
    public func generateMel(_ codes: [Int], isFinal: Bool, noise: inout some DetokenizerNoise) throws -> Int {
        let s = settings, vocab = dit.config.semanticVocabSize
        guard !codes.isEmpty, heldCodes.count + codes.count * s.upsample <= maxDiTFrames else {
            throw FormatError(
                "detokenizer", "a chunk of \(codes.count) codes (1...\(max(s.chunkTokens, s.firstChunkTokens)))")
        }
        if let bad = codes.first(where: { $0 < 0 || $0 >= vocab }) {
            throw FormatError("detokenizer", "audio code \(bad) outside 0..<\(vocab)")
        }
        // Conditions: the held-back look-ahead frames, then this chunk's codes ×upsample.
        var N = 0
        for c in heldCodes {
            frameCodes[N] = c
            N += 1
        }
        for c in codes {
            for _ in 0 ..< s.upsample {
                frameCodes[N] = c
                N += 1
            }
        }
        try noise.fill(x, count: N * mels)
        // torchdyn's fixed-step Euler: t and dt as it accumulates them, τ = (t·1000).long().
        var t = grid[0], dt = grid[1] - grid[0]
        for step in 1 ..< grid.count {
            dit.velocity(x: x, codes: frameCodes, frames: N, tau: Int(t * 1000), start: startPosition, into: v)
            for i in 0 ..< N * mels { x[i] += dt * v[i] }
            t = t + dt
            if step < grid.count - 1 { dt = grid[step + 1] - t }
        }
        let held = isFinal ? 0 : s.lookAheadTokens * s.upsample
        let keep = N - held
        heldCodes = (keep ..< N).map { frameCodes[$0] }
        if held > 0 {
            dit.velocity(
                x: x, codes: frameCodes, frames: keep, tau: Int(Float(0.999) * 1000), start: startPosition, into: v)
        }
        dit.commit(frames: keep)
        startPosition += keep
        if !isFinal && startPosition + 2 * keep > maxPositions {
            dit.reset()  // the official state has no prefill backup to restore: positions restart at 0
            startPosition = 0
        }
        for i in 0 ..< keep * mels { mel[i] = x[i] * melStd + melMean }
        chunkMel = UnsafeBufferPointer(start: mel, count: keep * mels)
        return keep
    }

    /// The vocoder on [held mel ; this chunk's mel] and the half-overlap stitching (§1.10).
    /// Returns the samples ready now (a view of the vocoder's output buffer, valid until the next call).
    private func vocode(frames F: Int, isFinal: Bool) -> UnsafeBufferPointer<Float> {
        let hop = vocoder.hopLength
        let P = preMel.count / mels, total = P + F
        preMel.withUnsafeBufferPointer { concat.update(from: $0.baseAddress!, count: P * mels) }
        (concat + P * mels).update(from: mel, count: F * mels)
        vocoder(mel: concat, frames: total, into: wav)
        let W = total * hop
        if isFinal { return UnsafeBufferPointer(start: wav, count: W) }
        if first {
            let half = hop * F / 2
            preWav = Array(UnsafeBufferPointer(start: wav + W - half, count: half))
            let m = F - (F / 2)  // Python mel[-F // 2:]: the last ⌈F/2⌉ frames
            preMel = Array(UnsafeBufferPointer(start: mel + (F - m) * mels, count: m * mels))
            return UnsafeBufferPointer(start: wav, count: half)
        }
        let prev = preWav.count
        let G = W > 2 * prev ? 2 * prev : W / 2
        let h = G / 2
        // torch.hamming_window(G) (periodic): w[n] = 0.54 − 0.46·cos(2πn/G)
        for n in 0 ..< h {
            let w0 = 0.54 - 0.46 * Foundation.cos(2 * Double.pi * Double(n) / Double(G))
            let w1 = 0.54 - 0.46 * Foundation.cos(2 * Double.pi * Double(G - h + n) / Double(G))
            wav[n] = preWav[n] * Float(w1) + wav[n] * Float(w0)
        }
        // Python's x[-0:] is all of x: with nothing left over, the whole wav and mel are kept.
        let R = W - G, Rm = R / hop
        preWav = Array(UnsafeBufferPointer(start: wav + (R == 0 ? 0 : G), count: R == 0 ? W : R))
        let m = Rm == 0 ? F : Rm
        preMel = Array(UnsafeBufferPointer(start: mel + (F - m) * mels, count: m * mels))
        return UnsafeBufferPointer(start: wav, count: G)
    }

    /// torch.linspace(0, 1, n) in f32: the first half from the start, the second from the end.
    static func linspace(_ n: Int) -> [Float] {
        let step = Float(1) / Float(n - 1)
        return (0 ..< n).map { i in i < n / 2 ? step * Float(i) : 1 - step * Float(n - 1 - i) }
    }
}
