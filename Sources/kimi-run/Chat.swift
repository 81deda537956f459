import Foundation
import KAF
import KimiCLI
import KimiRuntime

struct Chat: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Text → text: answer PROMPT, or chat interactively (one turn per line on stdin).",
        discussion:
            "Defaults follow the official sampler: greedy text (temperature 0), top-k 5, no repetition penalty (window 16)."
    )

    @OptionGroup var model: ModelArgument
    @Argument(help: "The prompt; without it, read one turn per line from stdin.") var prompt: String?
    @OptionGroup var generation: GenerationOptions
    @OptionGroup var context: ContextOptions
    @OptionGroup var threads: ThreadOptions
    @Flag(help: "Print one JSON object per answer: text, token ids, timings.") var json = false

    func run() throws {
        exitOnInterrupt()
        let f = try model.open()
        let chat = try TextChat(
            file: f, contextLength: context.context, threads: threads.count, options: generation.chatOptions)
        func answer(_ p: String) throws {
            let turn = try chat.respond(to: p) { piece in if !json { printPiece(piece) } }
            if json {
                let j: JSONValue = [
                    "text": .string(turn.text), "ids": .array(turn.ids.map { .int(Int64($0)) }),
                    "prompt_tokens": .int(Int64(turn.promptTokens)),
                    "prefill_seconds": .double(turn.prefillSeconds), "decode_seconds": .double(turn.decodeSeconds),
                    "decode_tokens_per_second": .double(Double(turn.ids.count) / max(turn.decodeSeconds, 1e-9)),
                ]
                print(j.serialized())
            } else {
                print("")
            }
        }
        if let p = prompt {
            try answer(p)
            return
        }
        while let line = try readLineUTF8() {
            if line.isEmpty { continue }
            try answer(line)
        }
    }
}
