import Foundation
import KAF
import KimiCLI
import KimiRuntime

struct KimiParity: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kimi-parity",
        abstract: "Check a .kaf model against golden cases written by the official PyTorch code.",
        discussion: """
            Each golden case (formats/GOLDEN.md) holds inputs and the official outputs. Stage lm: logits of
            both heads at every prompt position (max |Δ|, max relative error, worst row cosine, top-1
            agreement) and the greedy lock-step sequences id for id; stage text: tokenizer ids; stage whisper:
            the Whisper encoder's last hidden state and features per frame (cosine ≥ 0.99999 for f32 encoder
            weights, 0.9999 for 16-bit, 0.999 for q8, 0.99 for q4, on the audio's frames; all 1500 frames of the
            window for float weights only; max |Δ| reported); stage vq: the VQ codes of
            the clip (identical for f32 encoder weights, agreement reported otherwise); stage whisper_decoder (plain
            Whisper files): the decoder's logits teacher-forced on the golden ids at the encoder's cosine bound (f32 also
            max |Δ| ≤ 1e-3, identical top-1 and greedy ids; q8 top-1 ≥ 0.8) and its own greedy ids; stages dit,
            vocoder, detok (the detokenizer, with the reference's noise): the mel and the samples, bounded by the stored
            type of the DiT's linears and the vocoder's convolutions (f32: max |Δ| ≤ 1e-3 and SNR ≥ 60 dB; mel max |Δ|
            ≤ 0.02 for 16-bit, 0.05 for q8, 0.2 for q4; samples SNR ≥ 40 dB for 16-bit, 30 dB quantized), and for
            detok the samples each chunk returned.
            The default bounds follow the file's LLM weights: f32 must match the official f32 run (|Δ| ≤ 1e-3,
            cosine ≥ 0.99999, top-1 and greedy identical); f16/bf16 |Δ| ≤ 0.05, cosine ≥ 0.9999, top-1 ≥ 0.9;
            q8 cosine ≥ 0.9995, top-1 ≥ 0.9; q4 cosine ≥ 0.98, top-1 ≥ 0.5 (greedy sequences reported, not
            required, for 16-bit and quantized files). The options below override them.
            Exit status: 0 when every case passes, 1 when one fails, 2 on bad input.
            """)

    @OptionGroup var model: ModelArgument
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
        if golden.isEmpty { throw ValidationError("give at least one --golden CASE.safetensors") }
    }

    func run() throws {
        let kaf = try model.open()
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
        for g in golden { results.append(try Parity.run(kaf, golden: g, tolerance: tol, threads: threads.count)) }
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
                    "model": .string(model.path), "pass": .bool(results.allSatisfy(\.pass)), "tolerance": t,
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
}

runCommand(KimiParity.self)
