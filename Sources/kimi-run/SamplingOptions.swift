import Foundation
import KimiCLI
import KimiRuntime

/// Text-token sampling (chat; later asr and tts). Defaults follow the official sampler: greedy
/// (temperature 0), top-k 5, no repetition penalty over a window of 16.
struct TextSamplingOptions: ParsableArguments {
    @Option(help: "Text sampling temperature (0 = greedy).") var textTemperature: Float = 0
    @Option(help: "Text top-k.") var textTopK = 5
    @Option(help: "Text repetition penalty (1 = off).") var textPenalty: Float = 1
    @Option(help: "Random seed for sampling.") var seed: UInt64 = 0

    /// A sampler with these settings (repetition window 16).
    var sampler: Sampler {
        Sampler(temperature: textTemperature, topK: textTopK, penalty: textPenalty, window: 16, seed: seed)
    }
}

/// What every text-generating subcommand takes: the answer's length and the text sampling.
struct GenerationOptions: ParsableArguments {
    @Option(help: "Most tokens to generate per answer.") var maxTokens = 512
    @OptionGroup var sampling: TextSamplingOptions

    func validate() throws {
        if maxTokens < 1 { throw ValidationError("--max-tokens must be at least 1") }
    }

    var chatOptions: TextChat.Options {
        var o = TextChat.Options()
        o.maxTokens = maxTokens
        o.text = sampling.sampler
        return o
    }
}

/// Prints a piece of a streamed answer at once.
func printPiece(_ piece: String) {
    print(piece, terminator: "")
    fflush(stdout)
}
