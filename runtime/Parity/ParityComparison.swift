import Dispatch
import Foundation
import KAF

#if canImport(Glibc)
import Glibc
#endif

/// Measures a model .kaf against a reference .kaf of the same architecture on the same inputs
/// (formats/PARITY.md): every tensor, the text head's KL divergence / top-1 / perplexity on a text
/// corpus and the hidden state after every layer, the audio head on speech prompts, the audio
/// encoders, the detokenizer with shared noise, and each direction end to end. Sections the files
/// cannot run (no MIMO, no encoders, ...) are skipped with a note. Bands: ParityBands.swift.
public final class ParityComparison {
    public struct Inputs {
        public var corpus = ParityDefaults.corpus
        public var corpusName = ParityDefaults.corpusName
        /// 16 kHz mono clips.
        public var clips: [(name: String, samples: [Float])] = []
        /// Tokens per KL window (llama-perplexity's n_ctx): the second half of each is scored.
        public var window = 512
        public var maxWindows = 8
        /// Greedy text tokens per end-to-end text answer, lock-step steps per spoken answer.
        public var answerTokens = 32
        public var speechSteps = 48
        /// Most ids per 30 s window of a plain Whisper file (nil: to <|endoftext|> or the 448 limit).
        public var whisperTokens: Int? = nil
        public init() {}
    }

    public let reference: KAFFile
    public let model: KAFFile
    let threads: Int
    /// Sees the name of each stage as it starts (the CLI's progress line).
    public var onStage: (String) -> Void = { _ in }
    var seconds = (reference: 0.0, model: 0.0)
    var notes: [String] = []

    /// Refuses, naming the first tensor that differs, files of different architectures or shapes.
    public init(reference: KAFFile, model: KAFFile, threads: Int = 0) throws {
        (self.reference, self.model, self.threads) = (reference, model, threads)
        for e in model.entries where Self.isWeight(e) {
            guard let r = reference.entry(Self.referenceName(e.name, in: reference)) else {
                throw FormatError(model.path, "tensor '\(e.name)' is not in the reference \(reference.path)")
            }
            guard r.shape == e.shape else {
                throw FormatError(
                    model.path,
                    "tensor '\(e.name)' is \(e.shape) here but \(r.shape) in the reference \(reference.path)")
            }
        }
        if let llm = model.meta["components"]?["llm"]?["config"], reference.meta["components"]?["llm"]?["config"] != llm
        {
            throw FormatError(model.path, "the LLM config differs from the reference's (\(reference.path))")
        }
    }

    /// The reference tensor a model tensor is compared with: itself, or for a derived copy the
    /// reference lacks (a plain Whisper file's 8-bit head copy) the tensor it was made from.
    static func referenceName(_ name: String, in reference: KAFFile) -> String {
        let copy = ".head.weight"
        guard reference.entry(name) == nil, name.hasPrefix("whisper.decoder."), name.hasSuffix(copy) else {
            return name
        }
        return String(name.dropLast(copy.count)) + ".embed_tokens.weight"
    }

    static func isWeight(_ e: KAFEntry) -> Bool {
        e.compression == .none && e.component != "kaf" && e.component != "tokenizer"
            && (e.dtype.isFloat || e.dtype.isQuantized)
    }

    func has(_ f: KAFFile, _ components: String...) -> Bool {
        components.allSatisfy { f.meta["components"]?[$0] != nil }
    }

    /// Runs `body` for one side and adds its seconds to that side.
    func timed<T>(_ isReference: Bool, _ body: () throws -> T) rethrows -> T {
        let t0 = DispatchTime.now().uptimeNanoseconds
        defer {
            let s = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
            if isReference { seconds.reference += s } else { seconds.model += s }
        }
        return try body()
    }

    /// The whole report. `referenceKind` says what the reference is (a .kaf, a release folder).
    public func run(_ inputs: Inputs, referencePath: String? = nil, referenceKind: String = "kaf") throws
        -> ParityReport
    {
        let iso = ISO8601DateFormatter()
        func side(_ role: String, _ f: KAFFile, path: String, kind: String) -> ParityReport.Side {
            let llm = f.entry("llm.layers.0.mlp.up_proj.weight")?.dtype.name
            let enc = f.entries.first { $0.name.hasSuffix("fc1.weight") }?.dtype.name
            let what = llm.map { "LLM \($0)" } ?? enc.map { "encoder \($0)" } ?? "no LLM"
            return .init(role: role, path: path, kind: "\(kind), \(what)", fileBytes: f.file.count, seconds: 0)
        }
        var report = ParityReport(
            reference: side("reference", reference, path: referencePath ?? reference.path, kind: referenceKind),
            model: side("model", model, path: model.path, kind: "kaf"), created: iso.string(from: Date()))
        onStage("tensors")
        report.tensors = try tensorStats()
        report.checks += tensorChecks(report.tensors)
        if has(model, "llm") {
            onStage("text head and layers")
            let (checks, layers) = try textHead(inputs)
            report.checks += checks
            report.layers = layers
        } else {
            notes.append("no LLM in the model: text head, layers and the LLM directions are skipped")
        }
        if has(model, "whisper", "vq", "frontend") && has(reference, "whisper", "vq", "frontend") {
            if inputs.clips.isEmpty {
                notes.append("no speech clip: the audio sections are skipped")
            } else {
                onStage("audio in")
                report.checks += try audioIn(inputs)
                if has(model, "llm", "mimo") {
                    onStage("audio head")
                    report.checks += try audioHead(inputs)
                }
            }
        } else if has(model, "whisper") {
            if !inputs.clips.isEmpty && WhisperTranscriber.canTranscribe(model) {
                onStage("whisper")
                report.checks += try whisperOnly(inputs)
            }
        } else {
            notes.append("no audio encoders in the model: audio in is skipped")
        }
        if has(model, "dit", "vocoder") {
            onStage("audio out")
            report.checks += try audioOut(inputs)
        } else {
            notes.append("no detokenizer in the model: audio out is skipped")
        }
        if has(model, "llm") {
            onStage("end to end")
            report.checks += try directions(inputs)
        }
        report.reference.seconds = seconds.reference
        report.model.seconds = seconds.model
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        report.peakRSSBytes = Int(usage.ru_maxrss) * 1024
        let gib = Double(1 << 30)
        report.checks += [
            .init("resources", "reference_seconds", seconds.reference, unit: "s"),
            .init("resources", "model_seconds", seconds.model, unit: "s"),
            .init(
                "resources", "reference_resident", Double(Self.residentBytes(reference.file)) / gib, unit: "GiB",
                detail: "its file's pages in memory at the end (mincore), of \(formatBytes(reference.file.count))"),
            .init(
                "resources", "model_resident", Double(Self.residentBytes(model.file)) / gib, unit: "GiB",
                detail: "its file's pages in memory at the end (mincore), of \(formatBytes(model.file.count))"),
            .init(
                "resources", "peak_rss", Double(report.peakRSSBytes) / Double(1 << 30), unit: "GiB",
                detail: "both sides, one process"),
        ]
        report.notes = notes
        return report
    }

    /// Bytes of `f` in memory now: its pages in the page cache (mincore), whether or not this
    /// process still maps them (tts and talk let idle components' pages go; they stay cached).
    static func residentBytes(_ f: MappedFile) -> Int {
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        guard f.count > 0, page > 0 else { return 0 }
        let pages = (f.count + page - 1) / page
        var vec = [UInt8](repeating: 0, count: pages)
        guard mincore(UnsafeMutableRawPointer(mutating: f.base), f.count, &vec) == 0 else { return 0 }
        return vec.reduce(0) { $0 + Int($1 & 1) } * page
    }

    // MARK: tensors

    /// Every weight of the model against the reference's, decoded to f32 row by row (threads take
    /// whole tensors), worst SNR first.
    func tensorStats() throws -> [ParityReport.TensorStat] {
        let work = model.entries.filter(Self.isWeight)
        let pool = try ThreadPool(threads: threads, spinNanoseconds: 0)
        var out = [ParityReport.TensorStat?](repeating: nil, count: work.count)
        var failure: Error? = nil
        let lock = NSLock()
        // One tensor per item: each thread writes only its own slots.
        out.withUnsafeMutableBufferPointer { o in
            pool.parallelFor(n: work.count) { r, _ in
                for i in r {
                    do { o[i] = try tensorStat(work[i]) } catch { lock.withLock { failure = error } }
                }
            }
        }
        if let failure { throw failure }
        return out.compactMap { $0 }.sorted { $0.snrDB < $1.snrDB }
    }

    func tensorStat(_ e: KAFEntry) throws -> ParityReport.TensorStat {
        let m = try model.tensor(e.name), r = try reference.tensor(Self.referenceName(e.name, in: reference))
        let cols = max(e.shape.last ?? 1, 1), rows = e.elementCount / cols
        var a = [Float](repeating: 0, count: cols), b = a
        var se = 0.0, sr = 0.0, maxAbs = 0.0
        // 2-D weights through the runtime's row decoder (SIMD; tested equal to dequantizeRow_ref).
        let wm = e.shape.count == 2 ? WeightMatrix(m) : nil, wr = e.shape.count == 2 ? WeightMatrix(r) : nil
        for row in 0 ..< rows {
            if let wm {
                wm.dequantizeRow(row, into: &a)
            } else {
                dequantizeRow_ref(m.dtype, matrix: m.data, cols: cols, row: row, into: &a)
            }
            if let wr {
                wr.dequantizeRow(row, into: &b)
            } else {
                dequantizeRow_ref(r.dtype, matrix: r.data, cols: cols, row: row, into: &b)
            }
            for j in 0 ..< cols {
                let d = Double(a[j]) - Double(b[j])
                se += d * d
                sr += Double(b[j]) * Double(b[j])
                maxAbs = max(maxAbs, abs(d))
            }
        }
        let snr = se == 0 ? Double.infinity : sr == 0 ? -Double.infinity : 10 * log10(sr / se)
        return .init(
            name: e.name, dtype: m.dtype.name, referenceDtype: r.dtype.name, shape: e.shape,
            bitsPerWeight: Double(e.storedSize * 8) / Double(max(e.elementCount, 1)),
            rmse: (se / Double(max(e.elementCount, 1))).squareRoot(), maxAbs: maxAbs, snrDB: snr,
            band: ParityBands.tensorSNR(m.dtype))
    }

    func tensorChecks(_ t: [ParityReport.TensorStat]) -> [ParityReport.Check] {
        guard let worst = t.first else { return [] }
        let llm = t.filter { $0.name.hasPrefix("llm.") }
        let bits = llm.reduce(0.0) { $0 + $1.bitsPerWeight * Double($1.shape.reduce(1, *)) }
        let count = llm.reduce(0) { $0 + $1.shape.reduce(1, *) }
        var c: [ParityReport.Check] = [
            .init("tensors", "worst_snr", worst.snrDB, unit: "dB", detail: "\(worst.name) (\(worst.dtype))"),
            .init(
                "tensors", "failing", Double(t.filter { $0.verdict == .fail }.count), unit: "tensors",
                detail: "of \(t.count)"),
        ]
        if count > 0 {
            c.append(.init("tensors", "llm_bits_per_weight", bits / Double(count), unit: "bits", detail: "as stored"))
        }
        return c
    }
}
