import KimiCLI
import KimiRuntime

struct Ask: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Audio + question → text: answer QUESTION about AUDIO (or answer the audio itself).",
        discussion:
            "The question goes first as a user text message, then the audio; without a question the audio alone is the message, as in the official audio-QA example."
    )

    @OptionGroup var query: AudioQueryOptions
    @Argument(help: "The question about the audio.") var question: String?

    func run() throws { try query.run(instruction: question) }
}
