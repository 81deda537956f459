import CSndfile
import KAF

#if canImport(Glibc)
import Glibc
#endif

/// Mono WAV output, written as the samples arrive (docs/ARCHITECTURE.md §2.4).
/// * A file: libsndfile writes it to a temporary name beside the target (AtomicOutput), and
///   `finish` renames it into place: a failed or interrupted run leaves nothing behind.
/// * "-" (standard output): a pipe cannot be seeked back to fill in the lengths, so the header says
///   "unknown length" (0xFFFFFFFF in the RIFF and data sizes, as ffmpeg and sox write to pipes) and the
///   samples follow chunk by chunk; players (aplay, ffplay, sox) read to the end of the stream.
/// 16-bit PCM by default (float → lrint(x·32767), libsndfile's default conversion), or 32-bit float.
public final class WAVWriter {
    public enum Encoding: Sendable { case pcm16, float32 }

    public let path: String
    public let sampleRate: Int
    public let encoding: Encoding
    public private(set) var samplesWritten = 0
    private var file: AtomicOutput?
    private var sndfile: OpaquePointer?
    private var pcm = [Int16](repeating: 0, count: 4096)

    /// Checks and creates the output (before any generation, so a bad path fails early).
    public init(path: String, sampleRate: Int = 24000, encoding: Encoding = .pcm16) throws {
        self.path = path
        self.sampleRate = sampleRate
        self.encoding = encoding
        if path == "-" {
            try writeStreamHeader()
            return
        }
        let out = try AtomicOutput(target: path)
        var info = SF_INFO()
        info.samplerate = Int32(sampleRate)
        info.channels = 1
        info.format = Int32(SF_FORMAT_WAV) | Int32(encoding == .pcm16 ? SF_FORMAT_PCM_16 : SF_FORMAT_FLOAT)
        guard let sf = sf_open_fd(out.fd, Int32(SFM_WRITE), &info, 0) else {
            out.abandon()
            throw FormatError(path, "cannot write WAV: \(String(cString: sf_strerror(nil)))")
        }
        // No SFC_SET_CLIPPING: with it libsndfile scales by 32768 instead of 32767 (soundfile's
        // default, which the official code writes with); the vocoder's output is clamped to [−1, 1].
        file = out
        sndfile = sf
    }

    deinit {
        if let sf = sndfile { sf_close(sf) }
        file?.abandon()
    }

    /// Appends samples (24 kHz mono floats in [−1, 1]).
    public func write(_ samples: UnsafeBufferPointer<Float>) throws {
        guard !samples.isEmpty, let base = samples.baseAddress else { return }
        if let sf = sndfile {
            let n = sf_writef_float(sf, base, sf_count_t(samples.count))
            guard n == samples.count else {
                throw FormatError(path, "write failed: \(String(cString: sf_strerror(sf)))")
            }
        } else if encoding == .float32 {
            try writeStdout(UnsafeRawBufferPointer(samples))
        } else {
            var i = 0
            while i < samples.count {
                let n = min(pcm.count, samples.count - i)
                for k in 0 ..< n { pcm[k] = Int16(lrintf(min(max(base[i + k], -1), 1) * 32767)) }
                try pcm.withUnsafeBytes { try writeStdout(UnsafeRawBufferPointer(rebasing: $0.prefix(2 * n))) }
                i += n
            }
        }
        samplesWritten += samples.count
    }

    /// Completes the file (its header, then the rename) or flushes the stream.
    public func finish() throws {
        if let sf = sndfile {
            sndfile = nil
            let rc = sf_close(sf)
            guard rc == 0 else { throw FormatError(path, "cannot complete the WAV file (libsndfile error \(rc))") }
            try file?.commit()
            file = nil
        }
    }

    private func writeStreamHeader() throws {
        let bytesPerSample = encoding == .pcm16 ? 2 : 4
        var h: [UInt8] = []
        func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { h += $0 } }
        func u16(_ v: UInt16) { withUnsafeBytes(of: v.littleEndian) { h += $0 } }
        h += Array("RIFF".utf8)
        u32(0xFFFF_FFFF)
        h += Array("WAVEfmt ".utf8)
        u32(16)
        u16(encoding == .pcm16 ? 1 : 3)  // PCM or IEEE float
        u16(1)
        u32(UInt32(sampleRate))
        u32(UInt32(sampleRate * bytesPerSample))
        u16(UInt16(bytesPerSample))
        u16(UInt16(8 * bytesPerSample))
        h += Array("data".utf8)
        u32(0xFFFF_FFFF)
        try h.withUnsafeBytes { try writeStdout($0) }
    }

    private func writeStdout(_ data: UnsafeRawBufferPointer) throws {
        var p = data.baseAddress, left = data.count
        while left > 0, let q = p {
            let n = Glibc.write(1, q, left)
            if n < 0 {
                if errno == EINTR { continue }
                throw FormatError("stdout", "write failed: \(String(cString: strerror(errno)))")
            }
            p = q + n
            left -= n
        }
    }
}
