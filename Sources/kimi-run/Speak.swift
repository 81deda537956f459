import Foundation
import KAF
import KimiCLI
import KimiRuntime

#if canImport(Glibc)
import Glibc
#endif

struct Tts: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Text → speech: say TEXT into a 24 kHz WAV (-o FILE, or -o - to stream it to stdout).",
        discussion: """
            The release has no text-to-speech template: TEXT goes in one user text message after an instruction that
            asks for it to be read aloud (--instruction; default "\(SpeechAnswer.readAloudInstruction)"), answered in
            speech and text (output type "both"). The model may still answer rather than read: it is a conversational
            model. Speech is detokenized in chunks while the model generates; the text it says streams to stdout (to
            stderr when the audio goes to stdout). The context defaults to the official 1500 positions of a spoken
            answer (prompt included). The DiT is the slow part: about 4.9 TFLOP per second of speech at the official 30
            ODE steps; --ode-steps trades quality for time.
            """)

    @OptionGroup var model: ModelArgument
    @Argument(help: "The text to speak.") var text: String
    @Option(help: "The instruction before the text.") var instruction = SpeechAnswer.readAloudInstruction
    @OptionGroup var speech: SpeechOptions

    func validate() throws {
        if text.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty { throw ValidationError("TEXT is empty") }
    }

    func run() throws {
        try speech.run(model: model, audioInput: false) { answer, _, onText, onAudio in
            try answer.speak(text, instruction: instruction, onText: onText, onAudio: onAudio)
        }
    }
}

struct Talk: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Audio → speech: answer the spoken AUDIO in speech (a 24 kHz WAV) and text.",
        discussion: """
            The official speech-conversation layout: the audio as one user audio message (after --instruction as a
            text message, when given), answered with output type "both". The answer's text streams to stdout (to
            stderr when the audio goes to stdout with -o -).
            """)

    @OptionGroup var model: ModelArgument
    @Argument(help: "The question as audio (WAV, FLAC, OGG/Vorbis, …); - reads stdin.") var audio: String
    @Option(help: "A text message before the audio (default: none).") var instruction: String?
    @OptionGroup var speech: SpeechOptions

    func run() throws {
        try speech.run(model: model, audioInput: true, input: { try AudioInput.load(path: audio).samples }) {
            answer, samples, onText, onAudio in
            try answer.reply(to: samples, instruction: instruction, onText: onText, onAudio: onAudio)
        }
    }
}

/// What tts and talk share: the output, the audio and text sampling, the detokenizer's settings,
/// and the run (audio written as each chunk is ready, text streamed, `--json` at the end).
struct SpeechOptions: ParsableArguments {
    @Option(name: [.customShort("o"), .long], help: "The WAV to write (written atomically); - streams it to stdout.")
    var output: String
    @Flag(help: "32-bit float samples instead of 16-bit PCM.") var float = false
    @Option(help: "Audio sampling temperature (the official recommendation: 0.8).") var audioTemperature: Float = 0.8
    @Option(help: "Audio top-k (the official recommendation: 10).") var audioTopK = 10
    @OptionGroup var sampling: TextSamplingOptions
    @Option(help: "Most lock-step steps (text and audio at 12.5 per second; default: the official 1500 − prompt).")
    var maxTokens: Int?
    @Option(help: "Euler steps of the flow-matching ODE (the official 30; fewer is faster and rougher).")
    var odeSteps = 30
    @Option(help: "Codes per detokenizer chunk (the official 30 = 2.4 s).") var chunkTokens = 30
    @Option(help: "Codes of look-ahead regenerated with the next chunk (the official 12).") var lookahead = 12
    @OptionGroup var context: ContextOptions
    @OptionGroup var threads: ThreadOptions
    @Flag(
        help:
            "Keep every component's weight pages mapped. By default the LLM's pages are let go while a chunk is detokenized and the detokenizer's while the LLM runs (they never run at once): at --q4 that lowers the peak resident memory by about 2 GiB, and the pages come back from the page cache."
    )
    var keepResident = false
    @Flag(
        help:
            "Print one JSON object (to stderr when the audio goes to stdout): text, audio_seconds, text_tokens, audio_tokens, first_audio_seconds, per-stage seconds, steps_per_second, rtf."
    )
    var json = false

    func validate() throws {
        if let m = maxTokens, m < 1 { throw ValidationError("--max-tokens must be at least 1") }
        if !(2 ... 1000).contains(odeSteps) { throw ValidationError("--ode-steps must be in 2...1000") }
        if !(1 ... 4096).contains(chunkTokens) { throw ValidationError("--chunk-tokens must be in 1...4096") }
        if lookahead < 0 || lookahead >= chunkTokens {
            throw ValidationError("--lookahead must be at least 0 and less than --chunk-tokens")
        }
        if audioTopK < 0 { throw ValidationError("--audio-top-k must be at least 0") }
        if output.isEmpty { throw ValidationError("-o needs a file name (or - for stdout)") }
    }

    /// `input` reads the audio question (talk) once the model and the output are ready; `generate`
    /// gets it with the text and audio sinks.
    func run(
        model: ModelArgument, audioInput: Bool, input: () throws -> [Float] = { [] },
        _ generate: (SpeechAnswer, [Float], (String) -> Void, (UnsafeBufferPointer<Float>) throws -> Void) throws ->
            SpeechAnswer.Result
    ) throws {
        exitOnInterrupt()
        let f = try model.open()
        var o = SpeechAnswer.Options()
        o.maxSteps = maxTokens
        o.text = sampling.sampler
        o.audio = Sampler(
            temperature: audioTemperature, topK: audioTopK, penalty: 1, window: 16, seed: sampling.seed &+ 1)
        o.noiseSeed = sampling.seed &+ 2
        o.oneComponentResident = !keepResident
        o.detokenizer.odeSteps = odeSteps
        (o.detokenizer.chunkTokens, o.detokenizer.firstChunkTokens) = (chunkTokens, chunkTokens)
        o.detokenizer.lookAheadTokens = lookahead
        let answer = try SpeechAnswer(
            file: f, contextLength: context.context, threads: threads.count, options: o, audioInput: audioInput)
        let toStdout = output == "-"
        // The output exists (and is checked) before any generation.
        let wav = try WAVWriter(path: output, sampleRate: 24000, encoding: float ? .float32 : .pcm16)
        let t0 = DispatchTime.now().uptimeNanoseconds
        let samples = try input()
        let textOut: (String) -> Void = { piece in
            guard !json else { return }
            if toStdout {
                fputs(piece, stderr)
            } else {
                printPiece(piece)
            }
        }
        let r = try generate(answer, samples, textOut) { try wav.write($0) }
        try wav.finish()
        let total = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
        if !json {
            if toStdout { fputs("\n", stderr) } else { print("") }
            if r.codes.isEmpty { fputs("warning: the model produced no speech (no audio codes)\n", stderr) }
            return
        }
        var stages: [String: JSONValue] = [:]
        for s in r.stages { stages[s.name] = .double(s.seconds) }
        let lockstep = r.stages.first { $0.name == "lockstep" }?.seconds ?? 0
        var j: [String: JSONValue] = [
            "text": .string(r.text), "audio_seconds": .double(r.audioSeconds),
            "text_tokens": .int(Int64(r.textIds.count)), "audio_tokens": .int(Int64(r.codes.count)),
            "prompt_tokens": .int(Int64(r.promptTokens)), "steps": .int(Int64(r.steps)),
            "steps_per_second": .double(Double(r.steps) / max(lockstep, 1e-9)),
            "first_audio_seconds": r.firstAudioSeconds.map { .double($0) } ?? .null, "seconds": .object(stages),
            "total_seconds": .double(total), "rtf": .double(total / max(r.audioSeconds, 1e-9)),
            "output": .string(output),
        ]
        if audioInput { j["input_seconds"] = .double(Double(samples.count) / 16000) }
        let line = JSONValue.object(j).serialized() + "\n"
        if toStdout { fputs(line, stderr) } else { print(line, terminator: "") }
    }
}
