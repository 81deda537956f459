import KAF
import KimiCLI
import KimiRuntime

struct Asr: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Audio → text: transcribe AUDIO.",
        discussion: """
            The official layout: the transcription instruction as a user text message, then the audio as a user audio
            message, answered in text (greedy by default). The default instruction is the official one,
            "\(AudioQuery.asrInstruction)" ("Please convert the audio content to text."); --instruction replaces it.

            A plain Whisper file (kimi-convert of a Hugging Face Whisper folder) transcribes with its own decoder instead:
            consecutive 30 s windows, each decoded greedily without timestamps and independently of the others (as
            transformers' generate decodes one window), the texts joined. --language picks the language (multilingual
            models; default: detected on the first window); --max-tokens caps the tokens per window; a window that is
            silence (see --no-speech-threshold) gives no text; --json adds the language, one segment per window (with
            its no-speech probability and mean log-probability) and the seconds per stage. The sampling and context
            options do not apply.
            """)

    @OptionGroup var query: AudioQueryOptions
    @Option(help: "The instruction before the audio (default: the official transcription prompt).")
    var instruction = AudioQuery.asrInstruction
    @Option(
        help:
            "Plain Whisper files only: the spoken language's code (en, de, …); default: detected on the first 30 s (multilingual models)."
    )
    var language: String?
    @Option(
        help:
            "Plain Whisper files only: a window whose no-speech probability is above this and whose mean log-probability is below --logprob-threshold is silence and gives no text (openai-whisper's and faster-whisper's defaults; 1 keeps every window's text, as transformers does)."
    )
    var noSpeechThreshold = 0.6
    @Option(help: "Plain Whisper files only: see --no-speech-threshold.") var logprobThreshold = -1.0

    func run() throws {
        let f = try query.model.open()
        if WhisperTranscriber.canTranscribe(f) {
            let rule = WhisperTranscriber.SilenceRule(
                noSpeech: noSpeechThreshold < 1 ? noSpeechThreshold : nil, logprob: logprobThreshold)
            return try query.runWhisper(file: f, language: language, silence: rule)
        }
        if language != nil {
            throw FormatError(
                f.path, "--language: only plain Whisper files take it (Kimi-Audio transcribes the language it hears)")
        }
        try query.run(instruction: instruction, file: f)
    }
}
