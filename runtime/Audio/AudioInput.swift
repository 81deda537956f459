import CSndfile
import CSoxr
import KAF

#if canImport(Glibc)
import Glibc
#endif

/// Mono audio at a known rate.
public struct AudioClip: Sendable {
    public var samples: [Float]
    public var sampleRate: Int
    /// What the file held before mixing and resampling.
    public var sourceRate: Int
    public var sourceChannels: Int

    public var seconds: Double { Double(samples.count) / Double(sampleRate) }
}

/// Audio input as the reference reads it (docs/ARCHITECTURE.md §1.6): `librosa.load(path, sr=16000)`
/// = libsndfile's float samples (integer formats scaled by 1/2^(bits−1)), the channel mean, and
/// libsoxr at its high-quality recipe (python-soxr's `resample`, which librosa's default
/// `soxr_hq` calls), the output cut or zero-padded to ⌈N·out/in⌉ samples as librosa fixes it.
public enum AudioInput {
    /// The longest input read (with maxSourceSamples, a bound for hostile files: memory stays below
    /// ~1.2 GB of floats).
    public static let maxSeconds = 3600
    public static let maxChannels = 64
    /// The most frames decoded at the source rate (1.2 GB of mono floats): 3600 s up to 83 kHz.
    public static let maxSourceSamples = 300_000_000
    public static let rates = 1000 ... 768_000

    /// The most bytes read from standard input or a pipe (a bound for an endless stream).
    public static let maxStreamBytes = 2 << 30

    /// Reads `path` (WAV, FLAC, OGG/Vorbis, … — whatever libsndfile decodes) as mono at `sampleRate`.
    /// "-" reads standard input, and a pipe (`<(…)`) is read the same way: all of it first, because
    /// libsndfile needs to seek in most formats.
    public static func load(path: String, sampleRate: Int = 16000) throws -> AudioClip {
        if path == "-" { return try load(bytes: readAll(fd: 0, name: "stdin"), name: "stdin", sampleRate: sampleRate) }
        // A pipe is a stream of audio; anything else but a regular file is refused by openRegularFile.
        var st = stat()
        if stat(path, &st) == 0, (st.st_mode & S_IFMT) == S_IFIFO {
            // Opened without waiting for a writer, then read blocking: a pipe with a writer (`<(…)`)
            // is read to its end; one nobody writes to reads as empty instead of hanging in open().
            let fd = open(path, O_RDONLY | O_NONBLOCK)
            guard fd >= 0 else { throw FormatError(path, "cannot open (\(String(cString: strerror(errno))))") }
            defer { close(fd) }
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK)
            return try load(bytes: readAll(fd: fd, name: path), name: path, sampleRate: sampleRate)
        }
        var info = SF_INFO()
        let fd: Int32
        do {
            fd = try MappedFile.openRegularFile(path).fd
        } catch let e as FormatError where e.message.hasPrefix("cannot open") {
            throw FormatError(path, "cannot read this audio file (\(e.message))")
        }
        defer { close(fd) }  // after sf_close (defers run in reverse); libsndfile does not own it
        guard let sf = sf_open_fd(fd, Int32(SFM_READ), &info, 0) else {
            let why = String(cString: sf_strerror(nil))
            throw FormatError(path, "cannot read this audio file (\(why))")
        }
        defer { sf_close(sf) }
        return try decode(sf, info, file: path, sampleRate: sampleRate)
    }

    /// Reads an audio file held in memory; `name` names it in errors.
    public static func load(bytes: [UInt8], name: String, sampleRate: Int = 16000) throws -> AudioClip {
        guard !bytes.isEmpty else { throw FormatError(name, "no audio: the stream is empty") }
        return try bytes.withUnsafeBytes { raw in
            let source = MemorySource(raw)
            var io = SF_VIRTUAL_IO(
                get_filelen: { MemorySource.from($0).length },
                seek: { offset, whence, me in MemorySource.from(me).seek(offset, whence) },
                read: { ptr, count, me in MemorySource.from(me).read(ptr, count) },
                write: { _, _, _ in 0 },
                tell: { MemorySource.from($0).position })
            var info = SF_INFO()
            return try withExtendedLifetime(source) {
                guard let sf = sf_open_virtual(&io, Int32(SFM_READ), &info, Unmanaged.passUnretained(source).toOpaque())
                else { throw FormatError(name, "cannot read this audio (\(String(cString: sf_strerror(nil))))") }
                defer { sf_close(sf) }
                return try decode(sf, info, file: name, sampleRate: sampleRate)
            }
        }
    }

    /// All bytes of a stream, at most `maxStreamBytes`.
    static func readAll(fd: Int32, name: String) throws -> [UInt8] {
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        while true {
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw FormatError(name, "cannot read (\(String(cString: strerror(errno))))")
            }
            if n == 0 { return bytes }
            guard bytes.count + n <= maxStreamBytes else {
                throw FormatError(name, "more than \(maxStreamBytes >> 30) GiB of streamed audio; pass a file instead")
            }
            bytes += buffer[0 ..< n]
        }
    }

    /// The samples of an open file: bounds first, then the interleaved floats, the mean, the resampler.
    static func decode(_ sf: OpaquePointer, _ info: SF_INFO, file path: String, sampleRate: Int) throws -> AudioClip {
        let channels = Int(info.channels), rate = Int(info.samplerate), frames = Int(info.frames)
        guard (1 ... maxChannels).contains(channels) else {
            throw FormatError(path, "\(channels) audio channels; at most \(maxChannels) are read")
        }
        guard rates.contains(rate) else {
            throw FormatError(path, "sample rate \(rate) Hz is outside \(rates.lowerBound)...\(rates.upperBound)")
        }
        guard frames > 0 else { throw FormatError(path, "the file holds no audio samples") }
        guard frames <= maxSeconds * rate else {
            throw FormatError(
                path, "\(frames / rate) s of audio is longer than the \(maxSeconds) s read at most")
        }
        guard frames <= maxSourceSamples else {
            throw FormatError(
                path,
                "\(frames / rate) s at \(rate) Hz is more than the \(maxSourceSamples / rate) s read at that rate (\(maxSourceSamples) samples)"
            )
        }
        // Read in blocks, each mixed to mono at once: memory follows the samples actually there, not
        // the count the header claims (a 42-byte FLAC header claiming 4.9 GB of samples made the
        // whole buffer be allocated before the read found nothing; found by scripts/fuzz.sh).
        let block = 1 << 16
        var interleaved = [Float](repeating: 0, count: min(frames, block) * channels)
        var mono: [Float] = []
        mono.reserveCapacity(min(frames, 1 << 22))
        var read = 0
        while read < frames {
            let want = min(block, frames - read)
            let got = Int(
                interleaved.withUnsafeMutableBufferPointer { sf_readf_float(sf, $0.baseAddress!, sf_count_t(want)) })
            if let bad = interleaved.prefix(max(got, 0) * channels).firstIndex(where: { !$0.isFinite }) {
                throw FormatError(path, "sample \(read + bad / channels) is not a finite number")
            }
            mono += mixToMono(Array(interleaved.prefix(max(got, 0) * channels)), channels: channels)
            read += max(got, 0)
            guard got == want else {
                throw FormatError(path, "the audio ends after \(read) of \(frames) frames (truncated or damaged)")
            }
        }
        let samples = rate == sampleRate ? mono : try resample(mono, from: rate, to: sampleRate, file: path)
        return AudioClip(samples: samples, sampleRate: sampleRate, sourceRate: rate, sourceChannels: channels)
    }

    /// The mean of the channels (librosa `to_mono`: the channel values summed in order, then ÷ n).
    public static func mixToMono(_ interleaved: [Float], channels: Int) -> [Float] {
        guard channels > 1 else { return interleaved }
        let frames = interleaved.count / channels, n = Float(channels)
        var out = [Float](repeating: 0, count: frames)
        for f in 0 ..< frames {
            var s: Float = 0
            for c in 0 ..< channels { s += interleaved[f * channels + c] }
            out[f] = s / n
        }
        return out
    }

    /// libsoxr at SOXR_HQ, fed in pieces of 48000·in/out samples and flushed, as python-soxr's
    /// `resample` does; then ⌈N·out/in⌉ samples (librosa `fix_length`).
    public static func resample(_ x: [Float], from inRate: Int, to outRate: Int, file: String) throws -> [Float] {
        var err: soxr_error_t? = nil
        // NULL specs are soxr's documented defaults: float32 interleaved, soxr_quality_spec(SOXR_HQ, 0).
        guard let soxr = soxr_create(Double(inRate), Double(outRate), 1, &err, nil, nil, nil), err == nil else {
            throw FormatError(
                file, "resampling \(inRate) → \(outRate) Hz failed (\(err.map { String(cString: $0) } ?? "?"))")
        }
        defer { soxr_delete(soxr) }
        let capacity = x.count * outRate / inRate + 1
        var y = [Float](repeating: 0, count: capacity)
        let chunk = max(1, 48000 * inRate / outRate)
        var produced = 0
        try x.withUnsafeBufferPointer { xp in
            try y.withUnsafeMutableBufferPointer { yp in
                var done = 0
                var i = 0
                func check(_ e: soxr_error_t?) throws {
                    if let e { throw FormatError(file, "resampling failed (\(String(cString: e)))") }
                }
                while i < x.count {
                    let n = min(chunk, x.count - i)
                    try check(
                        soxr_process(
                            soxr, xp.baseAddress! + i, n, nil, yp.baseAddress! + produced, capacity - produced, &done))
                    produced += done
                    i += n
                }
                try check(soxr_process(soxr, nil, 0, nil, yp.baseAddress! + produced, capacity - produced, &done))
                produced += done
            }
        }
        // librosa: int(np.ceil(n · (target / orig))) in double precision (not exact integer arithmetic).
        let want = Int((Double(x.count) * (Double(outRate) / Double(inRate))).rounded(.up))
        y.removeLast(y.count - min(produced, y.count))
        if y.count > want { y.removeLast(y.count - want) } else { y += [Float](repeating: 0, count: want - y.count) }
        return y
    }
}

/// A read-only byte buffer behind libsndfile's virtual I/O (every offset clamped to the buffer).
private final class MemorySource {
    let bytes: UnsafeRawBufferPointer
    var offset = 0

    init(_ bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    static func from(_ p: UnsafeMutableRawPointer?) -> MemorySource {
        Unmanaged<MemorySource>.fromOpaque(p!).takeUnretainedValue()
    }

    var length: sf_count_t { sf_count_t(bytes.count) }
    var position: sf_count_t { sf_count_t(offset) }

    func seek(_ to: sf_count_t, _ whence: Int32) -> sf_count_t {
        let base = whence == SEEK_CUR ? offset : whence == SEEK_END ? bytes.count : 0
        let (target, overflow) = base.addingReportingOverflow(Int(to))
        offset = overflow ? offset : min(max(target, 0), bytes.count)
        return sf_count_t(offset)
    }

    func read(_ into: UnsafeMutableRawPointer?, _ count: sf_count_t) -> sf_count_t {
        let n = min(Int(max(count, 0)), bytes.count - offset)
        guard n > 0, let into, let base = bytes.baseAddress else { return 0 }
        into.copyMemory(from: base + offset, byteCount: n)
        offset += n
        return sf_count_t(n)
    }
}
