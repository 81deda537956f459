import KimiCLI
import KimiRuntime

struct Asr: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Audio → text: transcribe AUDIO.",
        discussion: """
            The official layout: the transcription instruction as a user text message, then the audio as a user audio
            message, answered in text (greedy by default). The default instruction is the official one,
            "\(AudioQuery.asrInstruction)" ("Please convert the audio content to text."); --instruction replaces it.
            """)

    @OptionGroup var query: AudioQueryOptions
    @Option(help: "The instruction before the audio (default: the official transcription prompt).")
    var instruction = AudioQuery.asrInstruction

    func run() throws { try query.run(instruction: instruction) }
}
