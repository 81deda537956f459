import Dispatch
import KAF

/// Text → speech and audio → speech (docs/ARCHITECTURE.md §2.4–2.5): `tts` and `talk`. The prompt
/// asks for output type "both"; the lock-step loop samples text from step 0 and audio from step 6
/// (the MIMO head) until the audio stream ends the message; audio ids at or above the token offset
/// are codes, detokenized chunk by chunk while generation goes on, so the first audio is out after
/// the first chunk (30 codes, 2.4 s of speech) plus one code.
public final class SpeechAnswer {
    public struct Options {
        /// Most lock-step steps; nil: the official budget of 1500 − prompt positions (120 s of audio).
        public var maxSteps: Int? = nil
        public var text = Sampler(temperature: 0, topK: 5, penalty: 1, window: 16)
        /// The official recommendation for speech: temperature 0.8, top-k 10.
        public var audio = Sampler(temperature: 0.8, topK: 10, penalty: 1, window: 16)
        public var detokenizer = Detokenizer.Settings()
        /// Seeds the DiT's noise.
        public var noiseSeed: UInt64 = 0
        /// Lets the LLM's weight pages go while a chunk is detokenized, and the detokenizer's when the
        /// LLM resumes: the two never run at once, and together they do not fit in 6 GiB at --q4.
        public var oneComponentResident = true
        public init() {}
    }

    /// The instruction `tts` puts before the text when none is given (the release has no TTS template).
    public static let readAloudInstruction = "Read the following text aloud, exactly as written, and say nothing else."
    /// The official budget for output type "both" (kimia.py: 1500 − prompt length).
    public static let officialStepBudget = 1500

    public struct Result {
        public var text: String
        public var textIds: [Int]
        /// Raw audio codes generated (the end-of-message id dropped).
        public var codes: [Int]
        public var promptTokens: Int
        public var steps: Int
        public var samples: Int
        /// From the call to the first emitted samples (nil: no audio).
        public var firstAudioSeconds: Double?
        /// Seconds per stage: input encoding (talk), prefill, lock-step steps (LLM only), dit, vocoder.
        public var stages: [(name: String, seconds: Double)]
        public var audioSeconds: Double { Double(samples) / 24000 }
    }

    public let chat: TextChat
    public let detokenizer: Detokenizer
    public var options: Options
    /// talk's encoders: made at init (so a file without them fails first), used for one question and
    /// then let go with their buffers and weight pages; made again for a later question.
    private var encoders: AudioEncoders?
    private let audioInput: Bool
    private let threads: Int

    /// `audioInput`: load the encoders too (talk). `contextLength` nil: the official 1500 positions.
    public init(
        file: KAFFile, contextLength: Int? = nil, threads: Int = 0, options: Options = Options(),
        audioInput: Bool = false
    ) throws {
        let needed = ["llm", "mimo", "dit", "vocoder"] + (audioInput ? ["whisper", "vq", "frontend"] : [])
        let missing = needed.filter { file.meta["components"]?[$0] == nil }
        guard missing.isEmpty else {
            throw FormatError(
                file.path,
                "speech output needs component\(missing.count > 1 ? "s" : "") \(missing.joined(separator: ", ")), which this file lacks "
                    + "(kimi-convert RELEASE_FOLDER OUT.kaf converts every component; --components \(needed.joined(separator: ",")))"
            )
        }
        encoders = audioInput ? try AudioEncoders(file: file, threads: threads, task: "talk") : nil
        self.audioInput = audioInput
        self.threads = threads
        // The official budget ends speech at position 1500: a longer KV cache would never be used
        // (at full size 8192 positions cost 1.1 GB).
        chat = try TextChat(file: file, contextLength: contextLength ?? Self.officialStepBudget, threads: threads)
        guard chat.prompt != nil, chat.llm.config.isKimi else {
            throw FormatError(file.path, "speech output needs a Kimi-Audio LLM")
        }
        detokenizer = try Detokenizer(file: file, threads: threads, settings: options.detokenizer)
        self.options = options
    }

    /// Speaks `text` (after `instruction`, nil: `readAloudInstruction`).
    public func speak(
        _ text: String, instruction: String? = nil, onText: (String) -> Void = { _ in },
        onAudio: (UnsafeBufferPointer<Float>) throws -> Void
    ) throws -> Result {
        let message = (instruction ?? Self.readAloudInstruction) + "\n" + text
        let streams = chat.prompt!.build([.init(.user, .text(message))], output: .both)
        return try generate(streams, features: [], featureWidth: 0, stages: [], onText: onText, onAudio: onAudio)
    }

    /// Answers 16 kHz `samples` in speech (after an optional text `instruction`, as ask orders them).
    public func reply(
        to samples: [Float], instruction: String? = nil, onText: (String) -> Void = { _ in },
        onAudio: (UnsafeBufferPointer<Float>) throws -> Void, onProgress: (Int, Int) -> Void = { _, _ in }
    ) throws -> Result {
        guard audioInput else { preconditionFailure("SpeechAnswer made without audioInput") }
        let made = try encoders ?? AudioEncoders(file: chat.llm.file, threads: threads, task: "talk")
        encoders = nil
        let e = try made.encode(samples, onProgress: onProgress)
        made.releaseWeights()
        let width = made.featureWidth
        var messages: [KimiPrompt.Message] = []
        if let instruction { messages.append(.init(.user, .text(instruction))) }
        messages.append(.init(.user, .audio(codes: e.codes)))
        let streams = chat.prompt!.build(messages, output: .both)
        if streams.count >= chat.llm.contextLength {
            throw AudioEncoders.tooLong(
                chat.llm.file.path, samples: samples.count, prompt: streams.count, codes: e.codes.count,
                context: chat.llm.contextLength)
        }
        return try generate(
            streams, features: e.features, featureWidth: width, stages: e.stages, onText: onText, onAudio: onAudio)
    }

    private func generate(
        _ p: KimiPrompt.Streams, features: [Float], featureWidth w: Int, stages: [(name: String, seconds: Double)],
        onText: (String) -> Void, onAudio: (UnsafeBufferPointer<Float>) throws -> Void
    ) throws -> Result {
        let llm = chat.llm, prompt = chat.prompt!, offset = llm.config.tokenOffset
        let start = DispatchTime.now().uptimeNanoseconds - UInt64(stages.reduce(0) { $0 + $1.seconds } * 1e9)
        let loop = LockStep(specials: prompt.specials)
        // Room for speech: the delay's blank steps and at least one code before the context ends.
        let room = min(Self.officialStepBudget, llm.contextLength) - p.count
        guard room > loop.delay + 1 else {
            throw FormatError(
                llm.file.path,
                "the prompt takes \(p.count) of \(min(Self.officialStepBudget, llm.contextLength)) positions: no room for a spoken answer"
            )
        }
        let steps = min(options.maxSteps ?? room, room)
        let t0 = DispatchTime.now().uptimeNanoseconds
        try features.withUnsafeBufferPointer { f in
            try llm.prefill(
                audioIds: p.audio, textIds: p.text, addText: p.addsText,
                features: p.featureRows.mapValues { f.baseAddress! + $0 * w }, start: 0, wantAudio: true)
        }
        let t1 = DispatchTime.now().uptimeNanoseconds
        detokenizer.reset()
        let (dit0, voc0) = (detokenizer.ditSeconds, detokenizer.vocoderSeconds)
        var noise = SeededNoise(seed: options.noiseSeed)
        var textSampler = options.text, audioSampler = options.audio
        var decoder = StreamingDecoder()
        var textIds: [Int] = [], codes: [Int] = [], pending: [Int] = []
        var samples = 0, firstAudio: UInt64? = nil, chunks = 0
        let s = detokenizer.settings
        func flush(final: Bool) throws {
            let size = chunks == 0 ? s.firstChunkTokens : s.chunkTokens
            // A chunk goes out once a later code shows it is not the last (the official is_final).
            guard pending.count > size || (final && !pending.isEmpty) else { return }
            if options.oneComponentResident { llm.file.releasePages(of: ["llm", "mimo"]) }
            defer { if options.oneComponentResident { llm.file.releasePages(of: ["dit", "vocoder"]) } }
            while pending.count > size || (final && !pending.isEmpty) {
                let n = min(size, pending.count)
                let last = final && n == pending.count
                try detokenizer.push(Array(pending.prefix(n)), isFinal: last, noise: &noise) { piece in
                    if firstAudio == nil { firstAudio = DispatchTime.now().uptimeNanoseconds }
                    samples += piece.count
                    try onAudio(piece)
                }
                pending.removeFirst(n)
                chunks += 1
                if last { break }
            }
        }
        var textDone = false
        let (texts, _) = try loop.run(
            llm, promptLength: p.count, steps: steps, output: .both, text: &textSampler, audio: &audioSampler
        ) { t, a in
            if t == loop.textEos { textDone = true }
            if !textDone && t < offset {
                textIds.append(t)
                onText(decoder.push(chat.tokenizer.bytes(of: t)))
            }
            if a >= offset {
                codes.append(a - offset)
                pending.append(a - offset)
                try flush(final: false)
            }
        }
        onText(decoder.flush())
        try flush(final: true)
        let t2 = DispatchTime.now().uptimeNanoseconds
        let dit = detokenizer.ditSeconds - dit0, voc = detokenizer.vocoderSeconds - voc0
        let sec = { (a: UInt64, b: UInt64) in Double(b - a) / 1e9 }
        return Result(
            text: chat.tokenizer.decode(textIds), textIds: textIds, codes: codes, promptTokens: p.count,
            steps: texts.count, samples: samples, firstAudioSeconds: firstAudio.map { sec(start, $0) },
            stages: stages + [
                ("prefill", sec(t0, t1)), ("lockstep", sec(t1, t2) - dit - voc), ("dit", dit), ("vocoder", voc),
            ])
    }
}
