import KAF
#if canImport(Glibc)
import Glibc
#endif

/// Slaney-scale triangular mel filters with Slaney area normalisation, as librosa.filters.mel
/// (htk=False, norm="slaney") builds them for Whisper's mel_filters.npz and as transformers'
/// WhisperFeatureExtractor does: both audio front ends (Whisper and the GLM-4-Voice tokenizer) use
/// 128 of them at 16 kHz with n_fft 400. Stored in the .kaf so the runtime needs no recipe.
public enum MelFilters {
    static func hzToMel(_ hz: Double) -> Double {
        let fSp = 200.0 / 3, minLogHz = 1000.0, minLogMel = minLogHz / fSp, logStep = log(6.4) / 27
        return hz >= minLogHz ? minLogMel + log(hz / minLogHz) / logStep : hz / fSp
    }

    static func melToHz(_ mel: Double) -> Double {
        let fSp = 200.0 / 3, minLogHz = 1000.0, minLogMel = minLogHz / fSp, logStep = log(6.4) / 27
        return mel >= minLogMel ? minLogHz * exp(logStep * (mel - minLogMel)) : fSp * mel
    }

    /// [nMels, nFFT/2 + 1], row-major.
    public static func slaney(nMels: Int, nFFT: Int = 400, sampleRate: Double = 16000, fMin: Double = 0, fMax: Double = 8000) -> [Float] {
        let bins = nFFT / 2 + 1
        let lo = hzToMel(fMin), hi = hzToMel(fMax)
        let f = (0 ..< nMels + 2).map { melToHz(lo + (hi - lo) * Double($0) / Double(nMels + 1)) }
        var w = [Float](repeating: 0, count: nMels * bins)
        for m in 0 ..< nMels {
            let enorm = 2 / (f[m + 2] - f[m])
            for k in 0 ..< bins {
                let hz = sampleRate / 2 * Double(k) / Double(bins - 1)
                let lower = (hz - f[m]) / (f[m + 1] - f[m])
                let upper = (f[m + 2] - hz) / (f[m + 2] - f[m + 1])
                w[m * bins + k] = Float(max(0, min(lower, upper)) * enorm)
            }
        }
        return w
    }
}

/// A tensor computed at conversion time (mel filters), always stored as f32.
public struct ComputedTensor: TensorProducer, Sendable {
    public let shape: [Int]
    public let values: [Float]
    public let source: String
    public var file: String { source }
    public var sourceDType: String { "f32" }

    public func rows(_ r: Range<Int>, into out: UnsafeMutablePointer<Float>) throws {
        let c = cols
        values.withUnsafeBufferPointer { v in
            out.update(from: v.baseAddress! + r.lowerBound * c, count: r.count * c)
        }
    }
}
