import CKissFFT
import Foundation

/// Power spectra of real frames of `n` samples (n even) through kissfft's real FFT, which is mixed
/// radix: n = 400 runs as it is, with no padding to a power of two. One instance per frame size and
/// thread (it owns its scratch); a call allocates nothing.
public final class PowerSpectrum: @unchecked Sendable {
    public let n: Int
    private let config: kiss_fftr_cfg
    private let frame: UnsafeMutablePointer<Float>
    private let bins: UnsafeMutablePointer<kiss_fft_cpx>

    public init(n: Int) {
        precondition(n >= 2 && n % 2 == 0, "PowerSpectrum: n must be even")
        self.n = n
        config = kiss_fftr_alloc(Int32(n), 0, nil, nil)
        frame = .allocate(capacity: n)
        bins = .allocate(capacity: n / 2 + 1)
    }

    deinit {
        free(UnsafeMutableRawPointer(config))  // kiss_fftr_free is a macro for free
        frame.deallocate()
        bins.deallocate()
    }

    /// out[k] = |Σ_j x[j]·w[j]·e^(−2πi·jk/n)|² for k = 0 … n/2.
    public func callAsFunction(
        _ x: UnsafePointer<Float>, window w: UnsafePointer<Float>, into out: UnsafeMutablePointer<Float>
    ) {
        for j in 0 ..< n { frame[j] = x[j] * w[j] }
        kiss_fftr(config, frame, bins)
        for k in 0 ... n / 2 { out[k] = bins[k].r * bins[k].r + bins[k].i * bins[k].i }
    }
}

/// Scalar twin: the DFT written out, in double precision.
public func powerSpectrum_ref(
    _ x: UnsafePointer<Float>, window w: UnsafePointer<Float>, n: Int, into out: UnsafeMutablePointer<Float>
) {
    for k in 0 ... n / 2 {
        var re = 0.0, im = 0.0
        for j in 0 ..< n {
            let v = Double(x[j] * w[j]), a = -2 * Double.pi * Double(j * k % n) / Double(n)
            re += v * cos(a)
            im += v * sin(a)
        }
        out[k] = Float(re * re + im * im)
    }
}
