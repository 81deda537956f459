import Foundation
import KAF
import KimiCLI
import KimiRuntime

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure LLM prefill and decode speed (llama-bench style: pp P, tg N).",
        discussion:
            "Token ids are fixed pseudo-random text ids; only the text head runs (no MIMO branch). Reports the best of --repetitions runs. As in llama-bench, the two tests are separate: pp processes P tokens from an empty context, tg decodes N tokens one at a time starting at position --depth (default 0: an empty context, like llama-bench's default -d 0; the depth tokens are prefilled untimed)."
    )

    @OptionGroup var model: ModelArgument
    @Option(name: [.customShort("p"), .long], help: "Prompt tokens for the prefill test (0 = skip).") var promptTokens =
        512
    @Option(name: [.customShort("n"), .long], help: "Generated tokens for the decode test (0 = skip).") var genTokens =
        32
    @Option(name: [.customShort("d"), .long], help: "Context depth the decode test starts at (llama-bench -d).")
    var depth = 0
    @OptionGroup var threads: ThreadOptions
    @Option(name: [.customShort("r"), .long], help: "Repetitions; the best is reported.") var repetitions = 2
    @Flag(help: "Print one JSON object.") var json = false

    func validate() throws {
        if promptTokens < 0 || genTokens < 0 || depth < 0 || repetitions < 1 {
            throw ValidationError("counts must be positive")
        }
    }

    func run() throws {
        exitOnInterrupt()
        let f = try model.open()
        // Positions the tests use, without overflow (-d 2^63-1 trapped); the model is loaded with at most
        // its own context, and a test that does not fit is refused before its ids are allocated.
        let (tgEnd, overflow) = depth.addingReportingOverflow(genTokens)
        let needed = overflow ? Int.max : max(promptTokens, tgEnd)
        let llm = try KimiLLM(file: f, contextLength: needed == Int.max ? needed : needed + 1, threads: threads.count)
        guard needed <= llm.contextLength else {
            throw CLIError(
                "\(model.path): bench needs \(overflow ? "more than \(Int.max)" : String(needed)) positions "
                    + "(-p \(promptTokens), -d \(depth) + -n \(genTokens)), more than the model's context of "
                    + "\(llm.contextLength)")
        }
        let c = llm.config
        var rng = SplitMix64(seed: 42)
        let textVocab = min(c.tokenOffset, 150_000)
        let ids = (0 ..< max(promptTokens, depth, 1)).map { _ in Int(rng.next() % UInt64(textVocab)) }
        // The text blank on the audio stream (0 where the file has no tokenizer table).
        let blank = c.isKimi ? ((try? KimiSpecials(tokenizer: TiktokenBPE(kaf: f), file: f.path))?.blank ?? 0) : 0
        func now() -> Double { Double(DispatchTime.now().uptimeNanoseconds) / 1e9 }
        var pp = 0.0, tg = 0.0
        for _ in 0 ..< repetitions {
            if promptTokens > 0 {
                let t0 = now()
                try llm.prefill(
                    audioIds: c.isKimi ? Array(repeating: blank, count: promptTokens) : Array(ids.prefix(promptTokens)),
                    textIds: Array(ids.prefix(promptTokens)), addText: true, start: 0, wantAudio: false)
                pp = max(pp, Double(promptTokens) / (now() - t0))
            }
            if genTokens > 0 {
                if depth > 0 {
                    try llm.prefill(
                        audioIds: c.isKimi ? Array(repeating: blank, count: depth) : Array(ids.prefix(depth)),
                        textIds: Array(ids.prefix(depth)), addText: true, start: 0, wantAudio: false)
                }
                let t0 = now()
                for i in 0 ..< genTokens {
                    try llm.step(
                        audioId: blank, textId: ids[i % ids.count], addText: true, feature: nil, pos: depth + i,
                        wantAudio: false)
                }
                tg = max(tg, Double(genTokens) / (now() - t0))
            }
        }
        let weights = f.entries.filter { $0.component == "llm" }.reduce(0) { $0 + $1.storedSize }
        if json {
            print(
                JSONValue.object([
                    "model": .string(model.path), "threads": .int(Int64(llm.pool.threadCount)),
                    "pp_tokens": .int(Int64(promptTokens)), "pp_tokens_per_second": .double(pp),
                    "tg_tokens": .int(Int64(genTokens)), "tg_depth": .int(Int64(depth)),
                    "tg_tokens_per_second": .double(tg),
                    "llm_weight_bytes": .int(Int64(weights)),
                ]).serialized())
        } else {
            print("model: \(model.path) (LLM weights \(formatBytes(weights))), threads \(llm.pool.threadCount)")
            if promptTokens > 0 { print(String(format: "pp%d: %.2f tokens/s", promptTokens, pp)) }
            if genTokens > 0 {
                print("tg\(genTokens)\(depth > 0 ? " @ d\(depth)" : ""): " + String(format: "%.2f tokens/s", tg))
            }
        }
    }
}
