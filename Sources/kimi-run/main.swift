import KAF
import KimiCLI
import KimiRuntime
import Foundation

struct KimiRun: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kimi-run",
        abstract: "Run a Kimi-Audio .kaf model on the CPU.",
        discussion: """
        The model file comes from kimi-convert. Subcommands:
          info   what the file holds: components, tensors, types, sizes, bits per weight
          chat   text → text: answers a prompt, or one turn per line on stdin (history kept)
          bench  LLM speed, llama-bench style: prefill of P tokens, then N decode steps
        Errors in the model file or the arguments print one line and exit with status 2.
        """,
        subcommands: [Info.self, Chat.self, Bench.self])
}

struct Info: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List components, tensors, dtypes, sizes and bits per weight of a .kaf file.")

    @Argument(help: "The .kaf model file.") var model: String
    @Flag(help: "Also list every tensor (name, dtype, shape, bytes).") var tensors = false
    @Flag(help: "Check every tensor's checksum (reads the whole file).") var verify = false
    @Flag(help: "Print one JSON object instead of text.") var json = false

    func run() throws {
        let f = try KAFFile(path: model, verify: verify)
        let s = ModelSummary(f)
        if json {
            var j = s.json.objectValue ?? [:]
            if tensors {
                j["tensors"] = .array(f.entries.map { e in
                    ["name": .string(e.name), "dtype": .string(e.dtype.name), "shape": .array(e.shape.map { .int(Int64($0)) }),
                     "offset": .int(Int64(e.offset)), "bytes": .int(Int64(e.storedSize))]
                })
            }
            if verify { j["verified"] = true }
            print(JSONValue.object(j).serialized())
            return
        }
        print(s.textReport(listTensors: tensors, verified: verify))
    }
}

struct Chat: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Text → text: answer PROMPT, or chat interactively (one turn per line on stdin).",
        discussion: "Defaults follow the official sampler: greedy text (temperature 0), top-k 5, no repetition penalty (window 16).")

    @Argument(help: "The .kaf model file.") var model: String
    @Argument(help: "The prompt; without it, read one turn per line from stdin.") var prompt: String?
    @Option(help: "Most tokens to generate per answer.") var maxTokens = 512
    @Option(help: "Text sampling temperature (0 = greedy).") var textTemperature: Float = 0
    @Option(help: "Text top-k.") var textTopK = 5
    @Option(help: "Text repetition penalty (1 = off).") var textPenalty: Float = 1
    @Option(help: "Random seed for sampling.") var seed: UInt64 = 0
    @Option(help: "Context length (default: the model's).") var context: Int?
    @Option(help: "Threads (default: all cores).") var threads: Int?
    @Flag(help: "Print one JSON object per answer: text, token ids, timings.") var json = false

    func validate() throws {
        if let t = threads, t < 1 { throw ValidationError("--threads must be at least 1") }
        if maxTokens < 1 { throw ValidationError("--max-tokens must be at least 1") }
        if let c = context, c < 8 { throw ValidationError("--context must be at least 8") }
    }

    func run() throws {
        exitOnInterrupt()
        let f = try KAFFile(path: model)
        var o = TextChat.Options()
        o.maxTokens = maxTokens
        o.text = Sampler(temperature: textTemperature, topK: textTopK, penalty: textPenalty, window: 16, seed: seed)
        let chat = try TextChat(file: f, contextLength: context, threads: threads ?? 0, options: o)
        func answer(_ p: String) throws {
            let turn = try chat.respond(to: p) { piece in if !json { print(piece, terminator: ""); fflush(stdout) } }
            if json {
                let j: JSONValue = ["text": .string(turn.text), "ids": .array(turn.ids.map { .int(Int64($0)) }),
                                    "prompt_tokens": .int(Int64(turn.promptTokens)),
                                    "prefill_seconds": .double(turn.prefillSeconds), "decode_seconds": .double(turn.decodeSeconds),
                                    "decode_tokens_per_second": .double(Double(turn.ids.count) / max(turn.decodeSeconds, 1e-9))]
                print(j.serialized())
            } else {
                print("")
            }
        }
        if let p = prompt { try answer(p); return }
        while let line = try readLineUTF8() {
            if line.isEmpty { continue }
            try answer(line)
        }
    }
}

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure LLM prefill and decode speed (llama-bench style: pp P, tg N).",
        discussion: "Token ids are fixed pseudo-random text ids; only the text head runs (no MIMO branch). Reports the best of --repetitions runs. As in llama-bench, the two tests are separate: pp processes P tokens from an empty context, tg decodes N tokens one at a time starting at position --depth (default 0: an empty context, like llama-bench's default -d 0; the depth tokens are prefilled untimed).")

    @Argument(help: "The .kaf model file.") var model: String
    @Option(name: [.customShort("p"), .long], help: "Prompt tokens for the prefill test (0 = skip).") var promptTokens = 512
    @Option(name: [.customShort("n"), .long], help: "Generated tokens for the decode test (0 = skip).") var genTokens = 32
    @Option(name: [.customShort("d"), .long], help: "Context depth the decode test starts at (llama-bench -d).") var depth = 0
    @Option(name: [.customShort("t"), .long], help: "Threads (default: all cores).") var threads: Int?
    @Option(name: [.customShort("r"), .long], help: "Repetitions; the best is reported.") var repetitions = 2
    @Flag(help: "Print one JSON object.") var json = false

    func validate() throws {
        if let t = threads, t < 1 { throw ValidationError("--threads must be at least 1") }
        if promptTokens < 0 || genTokens < 0 || depth < 0 || repetitions < 1 { throw ValidationError("counts must be positive") }
    }

    func run() throws {
        exitOnInterrupt()
        let f = try KAFFile(path: model)
        let llm = try KimiLLM(file: f, contextLength: max(promptTokens, depth + genTokens) + 1, threads: threads ?? 0)
        let c = llm.config
        var rng = SplitMix64(seed: 42)
        let textVocab = min(c.tokenOffset, 150_000)
        let ids = (0 ..< max(promptTokens, depth, 1)).map { _ in Int(rng.next() % UInt64(textVocab)) }
        let blank = c.isKimi ? (TokenizerSpecials.blank(f) ?? 0) : 0
        func now() -> Double { Double(DispatchTime.now().uptimeNanoseconds) / 1e9 }
        var pp = 0.0, tg = 0.0
        for _ in 0 ..< repetitions {
            if promptTokens > 0 {
                let t0 = now()
                try llm.prefill(audioIds: c.isKimi ? Array(repeating: blank, count: promptTokens) : Array(ids.prefix(promptTokens)),
                                textIds: Array(ids.prefix(promptTokens)), addText: true, start: 0, wantAudio: false)
                pp = max(pp, Double(promptTokens) / (now() - t0))
            }
            if genTokens > 0 {
                if depth > 0 {
                    try llm.prefill(audioIds: c.isKimi ? Array(repeating: blank, count: depth) : Array(ids.prefix(depth)),
                                    textIds: Array(ids.prefix(depth)), addText: true, start: 0, wantAudio: false)
                }
                let t0 = now()
                for i in 0 ..< genTokens {
                    try llm.step(audioId: blank, textId: ids[i % ids.count], addText: true, feature: nil, pos: depth + i, wantAudio: false)
                }
                tg = max(tg, Double(genTokens) / (now() - t0))
            }
        }
        let weights = f.entries.filter { $0.component == "llm" }.reduce(0) { $0 + $1.storedSize }
        if json {
            print(JSONValue.object(["model": .string(model), "threads": .int(Int64(llm.pool.threadCount)),
                                    "pp_tokens": .int(Int64(promptTokens)), "pp_tokens_per_second": .double(pp),
                                    "tg_tokens": .int(Int64(genTokens)), "tg_depth": .int(Int64(depth)), "tg_tokens_per_second": .double(tg),
                                    "llm_weight_bytes": .int(Int64(weights))]).serialized())
        } else {
            print("model: \(model) (LLM weights \(formatBytes(weights))), threads \(llm.pool.threadCount)")
            if promptTokens > 0 { print(String(format: "pp%d: %.2f tokens/s", promptTokens, pp)) }
            if genTokens > 0 { print("tg\(genTokens)\(depth > 0 ? " @ d\(depth)" : ""): " + String(format: "%.2f tokens/s", tg)) }
        }
    }
}

enum TokenizerSpecials {
    static func blank(_ f: KAFFile) -> Int? {
        f.meta["components"]?["tokenizer"]?["special_tokens"]?.arrayValue?
            .first { $0["name"]?.stringValue == "<|im_kimia_text_blank|>" }?["id"]?.intValue
    }
}

// `kimi-run MODEL.kaf info` (llama.cpp style, model first) and `kimi-run info MODEL.kaf` both work.
var args = Array(CommandLine.arguments.dropFirst())
let subcommands = KimiRun.configuration.subcommands.map { $0._commandName }
if args.count >= 2, !subcommands.contains(args[0]), !args[0].hasPrefix("-"), subcommands.contains(args[1]) {
    args.swapAt(0, 1)
}
runCommand(KimiRun.self, arguments: args)
