import Foundation
import KAF
import KimiCLI
import KimiRuntime

/// What asr and ask share: the model, the audio file, the generation options, and the run itself
/// (the answer streamed to stdout, or one JSON object with `--json`).
struct AudioQueryOptions: ParsableArguments {
    @OptionGroup var model: ModelArgument
    @Argument(help: "The audio file (WAV, FLAC, OGG/Vorbis, …; any rate and channel count); - reads stdin.")
    var audio: String
    @OptionGroup var generation: GenerationOptions
    @OptionGroup var context: ContextOptions
    @OptionGroup var threads: ThreadOptions
    @Flag(
        help:
            "Print one JSON object: text, audio_seconds, codes, prompt_tokens, generated_tokens, per-stage seconds, rtf."
    )
    var json = false

    func run(instruction: String?, file f: KAFFile? = nil) throws {
        exitOnInterrupt()
        let f = try f ?? model.open()
        let query = try AudioQuery(
            file: f, contextLength: context.context, threads: threads.count, options: generation.chatOptions)
        let t0 = DispatchTime.now().uptimeNanoseconds
        let clip = try AudioInput.load(path: audio)
        let load = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
        // Progress for audio over one 30 s piece, on a terminal only (a log keeps the one JSON object or text).
        let progress = isatty(2) != 0 && clip.seconds > 30
        let r = try query.answer(
            clip.samples, instruction: instruction, onText: { piece in if !json { printPiece(piece) } },
            onProgress: { done, total in
                guard progress else { return }
                fputs(done < total ? "\r\u{1B}[Kencoding audio: piece \(done + 1)/\(total)" : "\r\u{1B}[K", stderr)
            })
        guard json else { return print("") }
        var stages: [String: JSONValue] = ["decode_resample": .double(load)]
        for s in r.stages { stages[s.name] = .double(s.seconds) }
        stages["prefill"] = .double(r.turn.prefillSeconds)
        stages["generation"] = .double(r.turn.decodeSeconds)
        let total = load + r.stages.reduce(0) { $0 + $1.seconds } + r.turn.prefillSeconds + r.turn.decodeSeconds
        print(
            JSONValue.object([
                "text": .string(r.turn.text), "audio_seconds": .double(r.audioSeconds),
                "codes": .array(r.codes.map { .int(Int64($0)) }), "prompt_tokens": .int(Int64(r.turn.promptTokens)),
                "generated_tokens": .int(Int64(r.turn.ids.count)), "seconds": .object(stages),
                "rtf": .double(total / max(r.audioSeconds, 1e-9)),
            ]).serialized())
    }
}

extension AudioQueryOptions {
    /// asr with a plain Whisper file: its own decoder, window by window (WhisperTranscriber).
    func runWhisper(file f: KAFFile, language: String?, silence: WhisperTranscriber.SilenceRule) throws {
        exitOnInterrupt()
        let whisper = try WhisperTranscriber(file: f, threads: threads.count)
        if let language { _ = try whisper.languageToken(language) }  // a bad code fails before the audio is read
        let t0 = DispatchTime.now().uptimeNanoseconds
        let clip = try AudioInput.load(path: audio)
        let load = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
        let r = try whisper.transcribe(
            clip.samples, language: language, maxTokens: generation.maxTokens, silence: silence,
            onText: { piece in if !json { printPiece(piece) } })
        guard json else { return print("") }
        let total = load + r.melSeconds + r.encoderSeconds + r.decoderSeconds
        let segments: [JSONValue] = r.windows.map { w in
            .object([
                "start": .double(w.start), "end": .double(w.end), "text": .string(w.text),
                "tokens": .array(w.ids.map { .int(Int64($0)) }), "no_speech_prob": .double(w.noSpeechProb),
                "avg_logprob": .double(w.avgLogprob),
            ])
        }
        print(
            JSONValue.object([
                "text": .string(r.text), "language": r.language.map { .string($0) } ?? .null,
                "audio_seconds": .double(clip.seconds), "segments": .array(segments),
                "generated_tokens": .int(Int64(r.generatedTokens)),
                "seconds": .object([
                    "decode_resample": .double(load), "mel": .double(r.melSeconds),
                    "encoder": .double(r.encoderSeconds),
                    "decoder": .double(r.decoderSeconds),
                ]),
                "rtf": .double(total / max(clip.seconds, 1e-9)),
            ]).serialized())
    }
}
