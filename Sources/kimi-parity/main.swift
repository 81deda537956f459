import Foundation
import KAF
import KimiCLI
import KimiConvert
import KimiRuntime

struct KimiParity: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kimi-parity",
        abstract:
            "Measure how far a .kaf model is from a reference: a float .kaf, the release folder, or golden cases.",
        discussion: """
            kimi-parity REFERENCE MODEL.kaf --out DIR: the report of formats/PARITY.md. REFERENCE is a float \
            .kaf or the original release folder (its tensors are converted as stored, bf16 stays bf16, into \
            a temporary .kaf in DIR that is removed afterwards, and computed in f32). Both sides run on the same \
            inputs: every tensor (RMSE, max |Δ|, SNR, bits per weight), the text head on --text (KL divergence \
            mean / p99 / max, same top-1, perplexity, over the second half of windows of 512 tokens as \
            llama-perplexity --kl-divergence scores them), the hidden state after every trunk and MIMO layer \
            (cosine, relative error), the audio head on the speech prompt of each --audio clip, the audio \
            encoders (mel, Whisper features, VQ codes), the detokenizer with shared noise (DiT mel, vocoder \
            SNR), and each direction greedy end to end; time and peak memory. Each check has a verdict (pass, \
            drift within the documented warning band, fail) and the evidence behind its band. DIR receives \
            report.md, report.json and report.html (self-contained); a summary is printed.

            kimi-parity MODEL.kaf --golden CASES: against golden cases of the official code:
            Each golden case (formats/GOLDEN.md) holds inputs and the official outputs. Stage lm: logits of \
            both heads at every prompt position (max |Δ|, max relative error, worst row cosine, top-1 \
            agreement) and the greedy lock-step sequences id for id; stage text: tokenizer ids; stage whisper: \
            the Whisper encoder's last hidden state and features per frame (cosine ≥ 0.99999 for f32 encoder \
            weights, 0.9999 for 16-bit, 0.999 for q8, 0.99 for q4, on the audio's frames; all 1500 frames of the \
            window for float weights only; max |Δ| reported); stage vq: the VQ codes of \
            the clip (identical for f32 encoder weights, agreement reported otherwise); stage whisper_decoder (plain \
            Whisper files): the decoder's logits teacher-forced on the golden ids at the encoder's cosine bound (f32 also \
            max |Δ| ≤ 1e-3, identical top-1 and greedy ids; q8 top-1 ≥ 0.8) and its own greedy ids; stages dit, \
            vocoder, detok (the detokenizer, with the reference's noise): the mel and the samples, bounded by the stored \
            type of the DiT's linears and the vocoder's convolutions (f32: max |Δ| ≤ 1e-3 and SNR ≥ 60 dB; mel max |Δ| \
            ≤ 0.02 for 16-bit, 0.05 for q8, 0.2 for q4; samples SNR ≥ 40 dB for 16-bit, 30 dB quantized), and for \
            detok the samples each chunk returned.
            The default bounds follow the file's LLM weights: f32 must match the official f32 run (|Δ| ≤ 1e-3, \
            cosine ≥ 0.99999, top-1 and greedy identical); f16/bf16 |Δ| ≤ 0.05, cosine ≥ 0.9999, top-1 ≥ 0.9; \
            q8 cosine ≥ 0.9995, top-1 ≥ 0.9; q4 cosine ≥ 0.98, top-1 ≥ 0.5 (greedy sequences reported, not \
            required, for 16-bit and quantized files). The options below override them.
            Exit status: 0 when nothing fails (drift is not a failure), 1 when a check or case fails, 2 on bad input.
            """)

    @Argument(
        help:
            "MODEL.kaf with --golden; REFERENCE MODEL.kaf for the report (REFERENCE: a float .kaf or a release folder)."
    )
    var paths: [String] = []
    @Option(
        help: ArgumentHelp(
            "Report: the directory that receives report.md, report.json and report.html.", valueName: "dir"))
    var out: String?
    @Option(
        help: ArgumentHelp(
            "Report: a UTF-8 text for the KL divergence and perplexity (default: a built-in public-domain text).",
            valueName: "file"))
    var text: String?
    @Option(
        parsing: .upToNextOption,
        help: ArgumentHelp(
            "Report: speech clips (any format libsndfile reads; default: a built-in 3.2 s espeak-ng clip).",
            valueName: "file"))
    var audio: [String] = []
    @Flag(help: "Report: 2 windows of 128 tokens, 16 speech steps, 8-token answers, 32 ids per Whisper window.")
    var quick = false
    @Option(help: "Report with a release folder as the reference: the GLM-4-Voice tokenizer folder (as kimi-convert).")
    var vqTokenizer: String?
    @Option(
        name: .long, parsing: .upToNextOption,
        help: "Golden cases (.safetensors): --golden A B ... or --golden A --golden B.")
    var golden: [String] = []
    @Option(help: "Largest allowed |Δ| of a logit (default: by the file's weight type).") var maxAbs: Double?
    @Option(help: "Smallest allowed cosine of a logits row (default: by weight type).") var minCosine: Double?
    @Option(help: "Smallest allowed top-1 agreement, fraction of rows (default: by weight type).") var minTop1: Double?
    @Flag(help: "Report greedy sequence mismatches without failing.") var allowGreedyMismatch = false
    @Flag(help: "Require identical greedy sequences (the default for f32 files only).") var requireGreedy = false
    @OptionGroup var threads: ThreadOptions
    @Flag(help: "Print one JSON object.") var json = false

    func validate() throws {
        switch (paths.count, golden.isEmpty) {
        case (1, false): break
        case (2, true): if out == nil { throw ValidationError("give --out DIR for the report of REFERENCE MODEL.kaf") }
        case (2, false):
            throw ValidationError("give REFERENCE MODEL.kaf --out DIR, or MODEL.kaf --golden CASES, not both")
        case (1, true):
            throw ValidationError(
                "give a reference (kimi-parity REFERENCE MODEL.kaf --out DIR) or --golden CASE.safetensors")
        default: throw ValidationError("give MODEL.kaf --golden CASES, or REFERENCE MODEL.kaf --out DIR")
        }
    }

    func run() throws {
        if paths.count == 2 { return try report(reference: paths[0], model: paths[1], out: out!) }
        if let out { try ParityReport.checkOutputDirectory(out) }
        let kaf = try KAFFile(path: paths[0])
        var tol = Parity.Tolerance.forModel(kaf)
        // A file without an LLM (a plain Whisper file) is judged by its encoder's bounds only.
        var encoderOnly: String? = nil
        if kaf.entry("llm.layers.0.mlp.up_proj.weight") == nil, kaf.meta["components"]?["whisper"] != nil {
            let e = Parity.encoderCosine(kaf, component: "whisper")
            tol.basis = e.basis
            encoderOnly =
                "bounds (\(e.basis)): per-frame cosine ≥ \(minCosine ?? e.bound)\(e.bound < 0.9999 ? " on the audio's frames" : "")"
            if WhisperTranscriber.canTranscribe(kaf) {
                // Stage whisper_decoder (GoldenCase.runWhisperDecoder): logits rows at the same cosine.
                let rest =
                    e.bound >= 0.99999
                    ? "max |Δ| ≤ 0.001, top-1 and greedy ids identical"
                    : e.bound >= 0.9999 ? "top-1 identical, greedy reported" : "top-1 ≥ 0.8, greedy reported"
                encoderOnly! += "; decoder logits per position the same cosine, \(rest)"
            }
        }
        if let v = maxAbs { tol.maxAbs = v }
        if let v = minCosine { (tol.minCosine, tol.encoderMinCosine) = (v, v) }
        if let v = minTop1 { tol.minTop1 = v }
        if allowGreedyMismatch { tol.greedyMustMatch = false }
        if requireGreedy { tol.greedyMustMatch = true }
        var results: [Parity.CaseResult] = []
        let t0 = Date()
        for g in golden { results.append(try Parity.run(kaf, golden: g, tolerance: tol, threads: threads.count)) }
        if let out { try goldenReport(kaf, results, tol, seconds: Date().timeIntervalSince(t0)).write(to: out) }
        if json {
            let cases: [JSONValue] = results.map { r in
                [
                    "golden": .string(r.path), "stage": .string(r.stage), "pass": .bool(r.pass),
                    "metrics": .array(r.metrics.map(\.json)),
                ]
            }
            let t: JSONValue = [
                "basis": .string(tol.basis), "max_abs": tol.maxAbs.isFinite ? .double(tol.maxAbs) : .null,
                "min_cosine": .double(tol.minCosine), "min_top1": .double(tol.minTop1),
                "greedy_must_match": .bool(tol.greedyMustMatch),
            ]
            print(
                JSONValue.object([
                    "model": .string(paths[0]), "pass": .bool(results.allSatisfy(\.pass)), "tolerance": t,
                    "cases": .array(cases),
                ]).serialized())
        } else {
            if let encoderOnly {
                print(encoderOnly)
            } else {
                print(
                    "bounds (\(tol.basis)): max|Δ| \(tol.maxAbs.isFinite ? String(format: "%.3g", tol.maxAbs) : "any"), min cosine \(tol.minCosine), top-1 ≥ \(tol.minTop1), greedy \(tol.greedyMustMatch ? "identical" : "reported")"
                )
            }
            for r in results {
                print("\(r.pass ? "PASS" : "FAIL")  \(r.path)  (stage \(r.stage))")
                for m in r.metrics {
                    if let snr = m.snrDB {
                        print(
                            String(
                                format: "  %@ %@: max|Δ| %.3g  SNR %.1f dB  (%d samples)",
                                (m.pass ? "ok  " : "FAIL") as NSString,
                                m.name as NSString, m.maxAbs, snr, m.rows))
                    } else if let s = m.sequenceMatch {
                        print(
                            "  \(m.pass ? "ok  " : "FAIL") \(m.name): \(s ? "identical" : "differs after \(m.matchedPrefix) of \(m.expectedLength) (\(String(format: "%.1f", 100 * m.top1))% of positions agree)")"
                        )
                    } else {
                        print(
                            String(
                                format: "  %@ %@: max|Δ| %.3g  max rel %.3g  min cosine %.7f  top-1 %.3f  (%d rows)",
                                (m.pass ? "ok  " : "FAIL") as NSString, m.name as NSString, m.maxAbs, m.maxRel,
                                m.minCosine, m.top1, m.rows))
                    }
                }
            }
        }
        if !results.allSatisfy(\.pass) { throw ExitCode(1) }
    }

    /// Golden results as a report (section `golden`, one check per metric: 1 when it holds its
    /// bound, 0 when not; the detail says what was measured).
    func goldenReport(_ kaf: KAFFile, _ results: [Parity.CaseResult], _ tol: Parity.Tolerance, seconds: Double)
        -> ParityReport
    {
        let iso = ISO8601DateFormatter()
        var r = ParityReport(
            reference: .init(
                role: "reference", path: golden.joined(separator: " "), kind: "golden cases of the official code",
                fileBytes: golden.reduce(0) {
                    $0 + ((try? FileManager.default.attributesOfItem(atPath: $1)[.size] as? Int) ?? 0)
                },
                seconds: 0),
            model: .init(
                role: "model", path: paths[0], kind: "kaf, bounds for \(tol.basis)", fileBytes: kaf.file.count,
                seconds: seconds),
            created: iso.string(from: Date()))
        let band = ParityReport.Band(
            .atLeast, pass: 1, drift: 1,
            evidence: "the golden stage's bounds for the file's stored types (formats/GOLDEN.md, kimi-parity --help)")
        for c in results {
            let stem = URL(fileURLWithPath: c.path).deletingPathExtension().lastPathComponent
            for m in c.metrics {
                r.checks.append(
                    .init(
                        "golden", "\(c.stage) \(stem) \(m.name)", m.pass ? 1 : 0, band: band,
                        detail: m.json.serialized()))
            }
        }
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        r.peakRSSBytes = Int(usage.ru_maxrss) * 1024
        return r
    }

    /// The report of `model` against `reference`. Every input is checked before any work: the
    /// output directory, the text, the clips, both files and their architectures.
    func report(reference refPath: String, model modelPath: String, out: String) throws {
        try ParityReport.checkOutputDirectory(out)
        var inputs = ParityComparison.Inputs()
        if let text {
            guard let data = FileManager.default.contents(atPath: text), let s = String(data: data, encoding: .utf8)
            else {
                throw CLIError("\(text): cannot read it as UTF-8 text")
            }
            (inputs.corpus, inputs.corpusName) = (s, text)
        }
        let clips =
            audio.isEmpty
            ? [try AudioInput.load(bytes: ParityDefaults.clipFLAC, name: ParityDefaults.clipName)]
            : try audio.map { try AudioInput.load(path: $0) }
        inputs.clips = zip(audio.isEmpty ? [ParityDefaults.clipName] : audio, clips).map { ($0, $1.samples) }
        if quick {
            (inputs.window, inputs.maxWindows, inputs.speechSteps, inputs.answerTokens, inputs.whisperTokens) = (
                128, 2, 16, 8, 32
            )
        }
        let model = try KAFFile(path: modelPath)
        var isDir: ObjCBool = false
        let scratch = "\(out)/.kimi-parity-reference-\(getpid()).kaf"
        defer { AtomicFile.removeScratch(scratch) }
        let reference: KAFFile
        if FileManager.default.fileExists(atPath: refPath, isDirectory: &isDir), isDir.boolValue {
            reference = try convertReference(refPath, for: model, into: scratch)
        } else {
            reference = try KAFFile(path: refPath)
        }
        let comparison = try ParityComparison(reference: reference, model: model, threads: threads.count)
        let bar = StageLine()
        comparison.onStage = { bar.show($0) }
        let report = try comparison.run(
            inputs, referencePath: refPath,
            referenceKind: isDir.boolValue ? "release folder (as stored, in f32)" : "kaf")
        bar.finish()
        try report.write(to: out)
        if json {
            print(report.json.serialized())
        } else {
            print(report.summary())
            print("report: \(out)/report.md, \(out)/report.json, \(out)/report.html")
        }
        if report.verdict == .fail { throw ExitCode(1) }
    }

    /// The release folder's tensors as stored (16-bit stays 16-bit, everything else f32), only
    /// the components the model has, into `scratch` (removed on exit and on a signal).
    func convertReference(_ folder: String, for model: KAFFile, into scratch: String) throws -> KAFFile {
        let wanted = model.components.filter { !["kaf", "tokenizer", "frontend"].contains($0) }
        var opts = ConvertOptions(
            input: folder, policy: PrecisionPolicy(mode: .float(.f32)), components: wanted, vqTokenizer: vqTokenizer)
        let first = try Converter.plan(opts)
        let keeps: [(glob: String, type: DType)] = first.items.compactMap { i in
            switch i.producer.sourceDType {
            case "bf16": return (i.name, .bf16)
            case "f16": return (i.name, .f16)
            default: return nil
            }
        }
        opts.policy = PrecisionPolicy(mode: .float(.f32), keeps: keeps)
        let plan = try Converter.plan(opts)
        AtomicFile.registerScratch(scratch)
        var runner = ConversionRunner(plan: plan, threads: threads.count > 0 ? threads.count : ThreadOptions.onlineCPUs)
        runner.commandLine = "kimi-parity reference of \(folder)"
        FileHandle.standardError.write("converting the reference \(folder) (as stored) …\n".data(using: .utf8)!)
        _ = try runner.write(to: scratch, overwrite: true)
        return try KAFFile(path: scratch)
    }
}

/// The report's stage on stderr, with the seconds since the start ("[12.3 s] text head and layers").
final class StageLine {
    let start = Date()
    func show(_ stage: String) {
        FileHandle.standardError.write(
            String(format: "[%6.1f s] %@\n", Date().timeIntervalSince(start), stage).data(using: .utf8)!)
    }
    func finish() { show("done") }
}

runCommand(KimiParity.self)
