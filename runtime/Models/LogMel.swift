import COpenBLAS
import Foundation
import KAF

/// The log-mel front end of both audio encoders (docs/ARCHITECTURE.md §1.6), as the reference
/// computes it (Kimi's `whisper_Lv3/whisper.py` `log_mel_spectrogram` for the Whisper path,
/// transformers' `WhisperFeatureExtractor` torch path for GLM-4-Voice's VQ path): 16 kHz, n_fft
/// 400, hop 160, periodic Hann window, centred STFT with reflect padding, power spectrum without its
/// last frame, the Slaney filters stored in the .kaf, log10 clamped at 1e-10, floored at the
/// piece's max − 8, then (x + 4)/4.
public final class LogMel {
    public static let sampleRate = 16000, nFFT = 400, hop = 160
    /// A piece is at most 30 s; the Whisper path pads each to exactly this many samples.
    public static let pieceSamples = 480_000
    /// The VQ path pads to a multiple of this (conv strides 1·2 × pooling 4 × hop 160).
    public static let vqMultiple = 1280
    /// The reference extracts VQ features for at most this many pieces at once (one padded batch).
    public static let vqBatch = 128

    public let mels: Int
    let filters: [Float]  // [mels, nFFT/2 + 1]
    let window: [Float]
    let spectrum = PowerSpectrum(n: nFFT)

    /// The filters of `frontend.mel_filters` ([mels, 201], stored by kimi-convert).
    public convenience init(file: KAFFile) throws {
        let t = try file.tensor("frontend.mel_filters")
        guard t.shape.count == 2, t.shape[1] == Self.nFFT / 2 + 1, (1 ... 512).contains(t.shape[0]) else {
            throw FormatError(file.path, "tensor 'frontend.mel_filters' is \(t.shape), expected [mels, 201]")
        }
        self.init(filters: dequantize(t), mels: t.shape[0])
    }

    public init(filters: [Float], mels: Int) {
        precondition(filters.count == mels * (Self.nFFT / 2 + 1))
        self.filters = filters
        self.mels = mels
        _ = blasCore  // before its first sgemm
        // torch.hann_window(400), periodic: 0.5 − 0.5·cos(2πi/400).
        window = (0 ..< Self.nFFT).map { Float(0.5 - 0.5 * cos(2 * Double.pi * Double($0) / Double(Self.nFFT))) }
    }

    /// The 30 s pieces of `samples` (the last one shorter), as both reference paths cut them.
    public static func pieces(_ count: Int) -> [Range<Int>] {
        stride(from: 0, to: count, by: pieceSamples).map { $0 ..< min($0 + pieceSamples, count) }
    }

    /// 12.5 Hz positions of a piece of `samples` samples: ⌈L/1280⌉.
    public static func tokens(_ samples: Int) -> Int { (samples + vqMultiple - 1) / vqMultiple }

    /// [mels, length/160] (row-major) of `x` zero-padded to `length` samples (a multiple of 160,
    /// at least 201 and at least x.count).
    public func callAsFunction(_ x: ArraySlice<Float>, paddedTo length: Int) -> [Float] {
        precondition(length % Self.hop == 0 && length > Self.nFFT / 2 && length >= x.count)
        let half = Self.nFFT / 2, bins = half + 1, frames = length / Self.hop
        // Reflect padding by n_fft/2 on both sides (torch.stft center=True, pad_mode "reflect").
        var padded = [Float](repeating: 0, count: length + 2 * half)
        for (i, v) in x.enumerated() { padded[half + i] = v }
        for k in 1 ... half {
            padded[half - k] = padded[half + k]
            padded[half + length - 1 + k] = padded[half + length - 1 - k]
        }
        // Power spectra of frames 0 ..< frames (the STFT's last frame, number `frames`, is dropped).
        var power = [Float](repeating: 0, count: frames * bins)
        padded.withUnsafeBufferPointer { p in
            window.withUnsafeBufferPointer { w in
                power.withUnsafeMutableBufferPointer { out in
                    for f in 0 ..< frames {
                        spectrum(
                            p.baseAddress! + f * Self.hop, window: w.baseAddress!, into: out.baseAddress! + f * bins)
                    }
                }
            }
        }
        // mel = filters · powerᵀ: [mels, bins] × [bins, frames].
        var mel = [Float](repeating: 0, count: mels * frames)
        cblas_sgemm(
            CblasRowMajor, CblasNoTrans, CblasTrans, Int32(mels), Int32(frames), Int32(bins), 1, filters, Int32(bins),
            power, Int32(bins), 0, &mel, Int32(frames))
        var top = -Float.infinity
        for i in 0 ..< mel.count {
            mel[i] = log10(max(mel[i], 1e-10))
            top = max(top, mel[i])
        }
        let floor = top - 8
        for i in 0 ..< mel.count { mel[i] = (max(mel[i], floor) + 4) / 4 }
        return mel
    }

    /// The Whisper path: each piece padded to 480,000 samples → [mels, 3000], with its 12.5 Hz
    /// count (the encoder output keeps 4·tokens frames of it).
    public func whisperPieces(_ samples: [Float]) -> [(mel: [Float], tokens: Int)] {
        Self.pieces(samples.count).map { r in
            (self(samples[r], paddedTo: Self.pieceSamples), Self.tokens(r.count))
        }
    }

    /// The VQ path: the same pieces in batches of 128, each batch padded to its longest piece
    /// rounded up to a multiple of 1280 samples (`padding="longest"`, `pad_to_multiple_of=1280`) —
    /// a single piece only to its own length — → [mels, frames] with frames = padded length / 160.
    public func vqPieces(_ samples: [Float]) -> [(mel: [Float], frames: Int, tokens: Int, samples: Int)] {
        let all = Self.pieces(samples.count)
        var out: [(mel: [Float], frames: Int, tokens: Int, samples: Int)] = []
        for b in stride(from: 0, to: all.count, by: Self.vqBatch) {
            let batch = all[b ..< min(b + Self.vqBatch, all.count)]
            let longest = batch.map(\.count).max() ?? 0
            let length = Self.tokens(longest) * Self.vqMultiple
            for r in batch {
                out.append((self(samples[r], paddedTo: length), length / Self.hop, Self.tokens(r.count), r.count))
            }
        }
        return out
    }
}
