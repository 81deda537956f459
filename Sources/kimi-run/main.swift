import Foundation
import KAF
import KimiCLI
import KimiRuntime

struct KimiRun: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kimi-run",
        abstract: "Run a Kimi-Audio .kaf model on the CPU.",
        discussion: """
            The model file comes from kimi-convert. Subcommands:
              info   what the file holds: components, tensors, types, sizes, bits per weight
              chat   text → text: answers a prompt, or one turn per line on stdin (history kept)
              asr    audio → text: transcribes an audio file
              ask    audio + question → text
              tts    text → speech: a 24 kHz WAV (and the text the model says)
              talk   audio → speech: answers a spoken question in speech and text
              bench  LLM speed, llama-bench style: prefill of P tokens, then N decode steps
            Errors in the model file or the arguments print one line and exit with status 2.
            """,
        subcommands: [Info.self, Chat.self, Asr.self, Ask.self, Tts.self, Talk.self, Bench.self])
}

// `kimi-run MODEL.kaf info` (llama.cpp style, model first) and `kimi-run info MODEL.kaf` both work.
var args = Array(CommandLine.arguments.dropFirst())
let subcommands = KimiRun.configuration.subcommands.map { $0._commandName }
if args.count >= 2, !subcommands.contains(args[0]), !args[0].hasPrefix("-"), subcommands.contains(args[1]) {
    args.swapAt(0, 1)
}
runCommand(KimiRun.self, arguments: args)
