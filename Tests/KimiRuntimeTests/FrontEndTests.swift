import Foundation
import Testing

@testable import KAF
@testable import KimiConvert
@testable import KimiRuntime

/// Audio input and both log-mel front ends against the official code's outputs on real speech
/// (espeak-ng; goldens by scripts/reference/make_frontend_goldens.py: librosa.load, Kimi-Audio's
/// whisper_Lv3 `log_mel_spectrogram`, transformers' WhisperFeatureExtractor as GLM-4-Voice calls it).
@Suite(.serialized) struct FrontEndTests {
    static let fixtures = ModelSummaryTests.fixtures
    static func audio(_ name: String) -> String { fixtures + "/audio/" + name }
    static func golden(_ clip: String) throws -> SafetensorsFile {
        try SafetensorsFile(path: fixtures + "/golden/frontend_" + clip + ".safetensors")
    }

    /// The front end with the filters kimi-convert stores (`frontend.mel_filters`).
    static func logMel() throws -> LogMel {
        try LogMel(file: try ParityTests.convert("tiny-release", .quantized(bits: 8, group: 32)))
    }

    static func maxAbs(_ a: [Float], _ b: [Float]) -> Float {
        zip(a, b).reduce(0) { max($0, abs($1.0 - $1.1)) }
    }

    /// libsndfile + channel mean + libsoxr (SOXR_HQ) against librosa.load(sr=16000): the same
    /// length, and samples within 1e-5 (python-soxr builds its own copy of libsoxr; the measured
    /// difference is printed). A 16 kHz float file is read exactly.
    @Test(arguments: [("fox_22k.wav", "fox_22k", 22050, 1), ("fox_44k_stereo.flac", "fox_44k_stereo", 44100, 2)])
    func decodesAndResamplesAsLibrosa(_ c: (String, String, Int, Int)) throws {
        let clip = try AudioInput.load(path: Self.audio(c.0))
        let want = try Self.golden(c.1).tensor(named: "out.wav16k").floats()
        #expect(clip.sourceRate == c.2 && clip.sourceChannels == c.3 && clip.sampleRate == 16000)
        #expect(clip.samples.count == want.count)
        let d = Self.maxAbs(clip.samples, want)
        print("\(c.0): max |Δ| vs librosa.load \(d)")
        #expect(d <= 1e-5, "\(c.0): max |Δ| \(d)")
    }

    @Test func sixteenKilohertzFloatIsReadExactly() throws {
        let clip = try AudioInput.load(path: Self.audio("fox_16k_float.wav"))
        #expect(clip.samples == (try Self.golden("fox_22k").tensor(named: "out.wav16k").floats()))
    }

    /// The Whisper path per 30 s piece (one piece, and 30 s + 1 s) vs Kimi's log_mel_spectrogram:
    /// within 1e-4 on the stored frames, token counts equal.
    @Test(arguments: ["fox_22k", "fox_44k_stereo", "long_31s"])
    func whisperMelMatchesKimi(_ clip: String) throws {
        let g = try Self.golden(clip)
        let wav = try g.tensor(named: "out.wav16k").floats()
        let pieces = try Self.logMel().whisperPieces(wav)
        #expect(pieces.map(\.tokens) == (try g.tensor(named: "out.whisper_tokens").int64s().map { Int($0) }))
        #expect(pieces.count == Int(g.metadata["pieces"] ?? ""))
        for (i, p) in pieces.enumerated() {
            let want = try g.tensor(named: String(format: "out.whisper_mel.%03d", i))
            try Self.compare(p.mel, frames: 3000, want, "\(clip) whisper piece \(i)")
        }
    }

    /// The VQ path (padding to a multiple of 1280; two pieces batched to the longest) vs
    /// WhisperFeatureExtractor: frames and tokens equal, mel within 1e-4.
    @Test(arguments: ["fox_22k", "fox_44k_stereo", "long_31s"])
    func vqMelMatchesGLM(_ clip: String) throws {
        let g = try Self.golden(clip)
        let wav = try g.tensor(named: "out.wav16k").floats()
        let pieces = try Self.logMel().vqPieces(wav)
        #expect(pieces.map(\.frames) == (try g.tensor(named: "out.vq_frames").int64s().map { Int($0) }))
        #expect(pieces.map(\.tokens) == (try g.tensor(named: "out.vq_tokens").int64s().map { Int($0) }))
        for (i, p) in pieces.enumerated() {
            let want = try g.tensor(named: String(format: "out.vq_mel.%03d", i))
            try Self.compare(p.mel, frames: p.frames, want, "\(clip) vq piece \(i)")
        }
    }

    /// `got` is [128, frames]; the golden holds the first columns of each row.
    static func compare(_ got: [Float], frames: Int, _ want: SafetensorsTensor, _ what: String) throws {
        let w = try want.floats()
        let rows = want.shape[0], cols = want.shape[1]
        #expect(rows * frames == got.count, "\(what): \(got.count) values for \(rows) × \(frames)")
        guard rows * frames == got.count, cols <= frames else { return }
        var d: Float = 0
        for r in 0 ..< rows { for c in 0 ..< cols { d = max(d, abs(got[r * frames + c] - w[r * cols + c])) } }
        print("\(what): max |Δ| \(d)")
        #expect(d <= 1e-4, "\(what): max |Δ| \(d)")
    }

    /// kissfft's real FFT against the DFT written out (random frames and a Hann window).
    @Test func spectrumMatchesTheDFT() {
        var rng = SplitMix64(seed: 7)
        let n = 400
        let x = (0 ..< n).map { _ in Float(rng.nextDouble() * 2 - 1) }
        let w = (0 ..< n).map { Float(0.5 - 0.5 * cos(2 * Double.pi * Double($0) / Double(n))) }
        var got = [Float](repeating: 0, count: n / 2 + 1), want = got
        PowerSpectrum(n: n)(x, window: w, into: &got)
        powerSpectrum_ref(x, window: w, n: n, into: &want)
        let scale = want.max() ?? 1
        #expect(
            zip(got, want).allSatisfy { abs($0 - $1) <= 1e-5 * scale }, "\(zip(got, want).map { abs($0 - $1) }.max()!)")
    }

    /// Bytes in memory (what stdin and pipes go through) decode exactly as the file they came from.
    @Test func inMemoryAudioReadsAsTheFile() throws {
        for name in ["fox_22k.wav", "fox_44k_stereo.flac"] {
            let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: Self.audio(name))))
            let a = try AudioInput.load(path: Self.audio(name)), b = try AudioInput.load(bytes: bytes, name: "stdin")
            #expect(a.samples == b.samples && a.sourceRate == b.sourceRate && a.sourceChannels == b.sourceChannels)
        }
        #expect(throws: FormatError.self) { try AudioInput.load(bytes: [], name: "stdin") }
        #expect(throws: FormatError.self) { try AudioInput.load(bytes: Array("RIFF....WAVE".utf8), name: "stdin") }
    }

    /// Hostile files: one error naming the file, never a crash.
    /// A 42-byte FLAC whose header claims 4.9 GB of samples (found by scripts/fuzz.sh): one error,
    /// and the buffer follows the samples really there (before: the claimed size was allocated and
    /// zeroed first, raising the peak RSS by 4.9 GB).
    @Test func audioHeaderClaimingHugeLengthAllocatesNothingBig() throws {
        let path = ModelSummaryTests.fixtures + "/fuzz/audio/flac_header_claims_4.9GB.flac"
        let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
        var before = rusage(), after = rusage()
        getrusage(RUSAGE_SELF.rawValue, &before)
        #expect(throws: FormatError.self) { try AudioInput.load(bytes: bytes, name: "claims.flac") }
        getrusage(RUSAGE_SELF.rawValue, &after)
        let grewMB = (after.ru_maxrss - before.ru_maxrss) / 1024
        #expect(grewMB < 200, "peak RSS grew by \(grewMB) MB")
    }

    @Test func badAudioIsOneError() throws {
        let dir = NSTemporaryDirectory() + "audio-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        func wav(_ samples: [Float]) -> Data {
            var d = Data()
            func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { d.append(contentsOf: $0) } }
            func u16(_ v: UInt16) { withUnsafeBytes(of: v.littleEndian) { d.append(contentsOf: $0) } }
            d.append(contentsOf: Array("RIFF".utf8))
            u32(UInt32(36 + 4 * samples.count))
            d.append(contentsOf: Array("WAVE".utf8))
            d.append(contentsOf: Array("fmt ".utf8))
            u32(16)
            u16(3)
            u16(1)
            u32(16000)
            u32(64000)
            u16(4)
            u16(32)
            d.append(contentsOf: Array("data".utf8))
            u32(UInt32(4 * samples.count))
            for s in samples { u32(s.bitPattern) }
            return d
        }
        /// A WAV whose format tag names a codec libsndfile does not decode.
        func codec(_ tag: UInt16) -> Data {
            var d = wav([0.1, 0.2, 0.3, 0.4])
            d.replaceSubrange(20 ..< 22, with: withUnsafeBytes(of: tag.littleEndian) { Data($0) })
            return d
        }
        /// A real 8-bit PCM WAV of `seconds` of silence (small at 1 kHz: 7.2 MB for two hours).
        func pcm8(seconds: Int, rate: Int) -> Data {
            var d = wav([])
            let n = seconds * rate
            d.replaceSubrange(4 ..< 8, with: withUnsafeBytes(of: UInt32(36 + n).littleEndian) { Data($0) })
            d.replaceSubrange(
                20 ..< 36,
                with: [1, 0, 1, 0] + withUnsafeBytes(of: UInt32(rate).littleEndian) { Array($0) }
                    + withUnsafeBytes(of: UInt32(rate).littleEndian) { Array($0) } + [1, 0, 8, 0])
            d.replaceSubrange(40 ..< 44, with: withUnsafeBytes(of: UInt32(n).littleEndian) { Data($0) })
            d.append(Data(repeating: 128, count: n))
            return d
        }
        let cases: [(String, Data, String)] = [
            ("empty.wav", Data(), "cannot read"),
            ("text.wav", Data("this is not audio\n".utf8), "cannot read"),
            ("nan.wav", wav([0.1, .nan, 0.2, 0.3]), "not a finite number"),
            ("inf.wav", wav([0.1, 0.2, .infinity]), "not a finite number"),
            ("silence0.wav", wav([]), "no audio samples"),
            ("codec.wav", codec(0x1234), "cannot read"),
            ("two-hours.wav", pcm8(seconds: 7200, rate: 1000), "longer than the 3600 s"),
        ]
        for (name, bytes, want) in cases {
            let p = dir + "/" + name
            try bytes.write(to: URL(fileURLWithPath: p))
            do {
                _ = try AudioInput.load(path: p)
                Issue.record("\(name): read without an error")
            } catch let e as FormatError {
                #expect(e.file == p && e.message.contains(want) && !e.description.contains("\n"), "\(name): \(e)")
            }
        }
    }
}
