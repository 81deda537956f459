import Foundation
import KAF

/// The generation settings of a plain Whisper checkpoint (its generation_config.json, stored by
/// kimi-convert as `components.whisper.generation`), every id range-checked against the vocabulary.
public struct WhisperGeneration: Sendable {
    public let startOfTranscript, endOfText, noTimestamps, transcribe: Int
    public let suppress, beginSuppress: [Int]
    /// Language code ("en") → its token id; empty for English-only models.
    public let languages: [String: Int]
    public let multilingual: Bool
    /// Positions in a window's decoding, prompt included (448).
    public let maxLength: Int

    public init(json g: JSONValue, vocab: Int, maxPositions: Int, file: String) throws {
        func id(_ v: JSONValue?, _ what: String) throws -> Int {
            guard let i = v?.intValue, (0 ..< vocab).contains(i) else {
                throw FormatError(
                    file, "Whisper generation setting \(what) is missing or not a token id below \(vocab)")
            }
            return i
        }
        func ids(_ key: String) throws -> [Int] {
            guard let a = g[key] else { return [] }
            if a == .null { return [] }
            guard let list = a.arrayValue, list.count <= vocab else {
                throw FormatError(file, "Whisper generation setting \(key) is not a list of token ids")
            }
            return try list.map { try id($0, key) }
        }
        startOfTranscript = try id(g["decoder_start_token_id"], "decoder_start_token_id")
        endOfText = try id(g["eos_token_id"], "eos_token_id")
        noTimestamps = try id(g["no_timestamps_token_id"], "no_timestamps_token_id")
        suppress = try ids("suppress_tokens")
        beginSuppress = try ids("begin_suppress_tokens")
        var langs: [String: Int] = [:]
        for (name, v) in g["lang_to_id"]?.objectValue ?? [:] {
            guard name.hasPrefix("<|"), name.hasSuffix("|>"), name.count > 4 else {
                throw FormatError(file, "Whisper lang_to_id key '\(name)' is not a <|code|> token")
            }
            langs[String(name.dropFirst(2).dropLast(2))] = try id(v, "lang_to_id[\(name)]")
        }
        languages = langs
        multilingual = (g["is_multilingual"]?.boolValue ?? !langs.isEmpty) && !langs.isEmpty
        transcribe = multilingual ? try id(g["task_to_id"]?["transcribe"], "task_to_id.transcribe") : noTimestamps
        let m = g["max_length"]?.intValue ?? maxPositions
        guard (4 ... maxPositions).contains(m) else {
            throw FormatError(file, "Whisper max_length \(m) is not in 4...\(maxPositions) (max_target_positions)")
        }
        maxLength = m
    }

    /// The decoder prompt: sot, language, transcribe, no-timestamps (multilingual); sot,
    /// no-timestamps (English-only), as transformers' generate builds it.
    public func prompt(language: Int?) -> [Int] {
        guard multilingual, let language else { return [startOfTranscript, noTimestamps] }
        return [startOfTranscript, language, transcribe, noTimestamps]
    }

    /// The code of a language token id ("en").
    public func code(of id: Int) -> String? { languages.first { $0.value == id }?.key }
}

/// Audio → text with a plain Whisper checkpoint (docs/ARCHITECTURE.md §3.7): consecutive 30 s
/// windows, each one log-mel → encoder → greedy decoding without timestamps, as transformers'
/// `generate` does it for a single window (suppress_tokens at every step, begin_suppress_tokens at
/// the first, stop at <|endoftext|> or max_length positions); the windows' texts are joined.
public final class WhisperTranscriber {
    public let file: KAFFile
    public let generation: WhisperGeneration
    let mel: LogMel
    let encoder: WhisperEncoder
    let decoder: WhisperDecoder
    let tokenizer: TiktokenBPE
    let encoderOut: UnsafeMutablePointer<Float>

    public struct Window: Sendable {
        public let start, end: Double
        /// The decoded ids (empty when the window was judged silent).
        public let ids: [Int]
        public let text: String
        public let noSpeechProb, avgLogprob: Double
    }

    public struct Result: Sendable {
        public var text = ""
        public var language: String?
        public var windows: [Window] = []
        public var melSeconds = 0.0, encoderSeconds = 0.0, decoderSeconds = 0.0
        public var generatedTokens = 0
    }

    public init(file: KAFFile, threads: Int = 0) throws {
        self.file = file
        guard let wc = file.meta["components"]?["whisper"] else {
            throw FormatError(file.path, "no Whisper model in this file (components.whisper missing)")
        }
        guard let g = wc["generation"] else {
            throw FormatError(
                file.path,
                "this file's Whisper has no decoder (a Kimi-Audio file keeps only the encoder; convert a plain Whisper checkpoint to transcribe with it)"
            )
        }
        mel = try LogMel(file: file)
        encoder = try WhisperEncoder(file: file, threads: threads)
        guard mel.mels == encoder.config.melBins else {
            throw FormatError(
                file.path, "frontend.mel_filters has \(mel.mels) mels, the encoder takes \(encoder.config.melBins)")
        }
        decoder = try WhisperDecoder(file: file, compute: encoder.compute, frames: encoder.frames)
        generation = try WhisperGeneration(
            json: g, vocab: decoder.config.vocab, maxPositions: decoder.config.maxTargetPositions, file: file.path)
        tokenizer = try TiktokenBPE(kaf: file)
        encoderOut = encoder.compute.arena.floats(encoder.frames * encoder.config.dModel)
    }

    public var threadCount: Int { encoder.threadCount }

    /// Whether `file` holds a plain Whisper checkpoint with its decoder (what `init` needs).
    public static func canTranscribe(_ file: KAFFile) -> Bool {
        file.meta["components"]?["whisper"]?["generation"] != nil
    }

    /// The language token id for `code`, or an error listing the valid codes.
    public func languageToken(_ code: String) throws -> Int? {
        guard generation.multilingual else {
            if code == "en" { return nil }
            throw FormatError(file.path, "this Whisper model is English-only: --language takes only en")
        }
        guard let id = generation.languages[code] else {
            throw FormatError(
                file.path,
                "unknown language '\(code)' (this model knows: \(generation.languages.keys.sorted().joined(separator: " ")))"
            )
        }
        return id
    }

    /// Encodes one window's mel [mels, 3000] and starts the decoder on it.
    public func encode(mel m: UnsafePointer<Float>) {
        encoder(mel: m, into: encoderOut)
        decoder.begin(encoderOutput: encoderOut)
    }

    /// The most likely language token at the start-of-transcript position (transformers'
    /// `detect_language`: every non-language id masked). Call after `encode`; restarts the decoder.
    public func detectLanguage() -> Int {
        decoder.restart()
        let l = decoder.step(generation.startOfTranscript)
        var best = -1
        for id in generation.languages.values.sorted() { l[id] = decoder.exactLogit(id) }
        for id in generation.languages.values.sorted() where best < 0 || l[id] > l[best] { best = id }
        decoder.restart()
        return best
    }

    /// A window's decoding: the ids after the prompt (the final <|endoftext|> included when
    /// decoding stopped on it), the no-speech probability (softmax at the start-of-transcript position,
    /// of the token before <|notimestamps|>, as transformers' WhisperNoSpeechDetection takes it) and
    /// the mean log-probability of the chosen ids (openai-whisper's avg_logprob: eot included).
    public struct Decoded: Sendable {
        public var ids: [Int] = []
        public var noSpeechProb = 0.0, avgLogprob = 0.0
    }

    /// Greedy ids after `prompt` for the encoded window; `maxNew` caps the count.
    public func greedy(prompt: [Int], maxNew: Int? = nil) -> [Int] { decode(prompt: prompt, maxNew: maxNew).ids }

    /// Greedy decoding of the encoded window after `prompt`; `onNoSpeech` gets the no-speech
    /// probability once the prompt is in, `onToken` each id as it is chosen.
    public func decode(
        prompt: [Int], maxNew: Int? = nil, onNoSpeech: (Double) -> Void = { _ in }, onToken: (Int) -> Void = { _ in }
    ) -> Decoded {
        let g = generation, vocab = decoder.config.vocab
        decoder.restart()
        var logits = decoder.logits
        var r = Decoded()
        for (i, t) in prompt.enumerated() {
            logits = decoder.step(t)
            if i == 0 && g.noTimestamps > 0 {
                r.noSpeechProb = exp(Double(logits[g.noTimestamps - 1] - logSumExp(logits, count: vocab)))
            }
        }
        onNoSpeech(r.noSpeechProb)
        let limit = min(g.maxLength - prompt.count, maxNew ?? Int.max)
        var sum = 0.0
        while r.ids.count < limit {
            for s in g.suppress { logits[s] = -.infinity }
            if r.ids.isEmpty { for s in g.beginSuppress { logits[s] = -.infinity } }
            decoder.refine(logits)
            let id = argmax(logits, count: vocab)
            sum += Double(logits[id] - logSumExp(logits, count: vocab))
            r.ids.append(id)
            onToken(id)
            if id == g.endOfText || decoder.position >= g.maxLength { break }
            logits = decoder.step(id)
        }
        r.avgLogprob = sum / Double(max(r.ids.count, 1))
        return r
    }

    /// Text of ids: the text tokens (below <|endoftext|>), special and timestamp tokens left out.
    public func text(_ ids: [Int]) -> String {
        tokenizer.decode(ids.filter { $0 < generation.endOfText })
    }

    /// A window whose samples all stay below this (−80 dBFS) is silence without decoding.
    public static let silencePeak: Float = 1e-4

    /// When a window counts as silence (openai-whisper's and faster-whisper's defaults): no-speech
    /// probability above `noSpeech` and mean log-probability below `logprob`; its text is dropped.
    /// `noSpeech` nil: never (every window's text is kept, as transformers' generate keeps it).
    public struct SilenceRule: Sendable {
        public var noSpeech: Double? = 0.6
        public var logprob = -1.0
        public init(noSpeech: Double? = 0.6, logprob: Double = -1.0) {
            (self.noSpeech, self.logprob) = (noSpeech, logprob)
        }
        func isSilent(_ d: Decoded) -> Bool {
            guard let t = noSpeech else { return false }
            return d.noSpeechProb > t && d.avgLogprob < logprob
        }
    }

    /// Transcribes 16 kHz mono `samples`: `language` a code or nil (detected on the first window for
    /// multilingual models); `onText` gets the text as it is decoded (a window that may turn out
    /// silent, by `silence`, is held back until it is decided).
    public func transcribe(
        _ samples: [Float], language code: String? = nil, maxTokens: Int? = nil, silence: SilenceRule = SilenceRule(),
        onText: (String) -> Void = { _ in }
    ) throws -> Result {
        var r = Result()
        var language = try code.flatMap { try languageToken($0) }
        let pieces = LogMel.pieces(samples.count)
        var stream = StreamingDecoder()
        func emit(_ id: Int) {
            let s = stream.push(tokenizer.bytes(of: id))
            if !s.isEmpty { onText(s) }
        }
        let rate = Double(LogMel.sampleRate)
        for range in pieces {
            let (start, end) = (Double(range.lowerBound) / rate, Double(range.upperBound) / rate)
            // Digital silence (peak below −80 dBFS) is not decoded: Whisper answers it with a
            // hallucinated " you" that neither threshold catches (no-speech 0.95, log-probability −0.38 on tiny.en).
            if samples[range].allSatisfy({ abs($0) < Self.silencePeak }) {
                r.windows.append(Window(start: start, end: end, ids: [], text: "", noSpeechProb: 1, avgLogprob: 0))
                continue
            }
            let t0 = DispatchTime.now().uptimeNanoseconds
            let m = mel(samples[range], paddedTo: LogMel.pieceSamples)
            let t1 = DispatchTime.now().uptimeNanoseconds
            m.withUnsafeBufferPointer { encode(mel: $0.baseAddress!) }
            let t2 = DispatchTime.now().uptimeNanoseconds
            if generation.multilingual && language == nil { language = detectLanguage() }
            let eot = generation.endOfText
            // Streamed live unless the window may be silence (then held until its mean log-probability is known).
            var held: [Int] = [], live = true
            let d = decode(
                prompt: generation.prompt(language: language), maxNew: maxTokens,
                onNoSpeech: { p in live = !(silence.noSpeech.map { p > $0 } ?? false) }
            ) { id in
                guard id < eot else { return }
                if live { emit(id) } else { held.append(id) }
            }
            let silent = silence.isSilent(d)
            if !live && !silent { held.forEach(emit) }
            let ids = silent ? [] : d.ids
            let t3 = DispatchTime.now().uptimeNanoseconds
            r.melSeconds += Double(t1 - t0) / 1e9
            r.encoderSeconds += Double(t2 - t1) / 1e9
            r.decoderSeconds += Double(t3 - t2) / 1e9
            r.generatedTokens += d.ids.count
            let text = self.text(ids)
            r.windows.append(
                Window(
                    start: start, end: end, ids: ids, text: text, noSpeechProb: d.noSpeechProb, avgLogprob: d.avgLogprob
                ))
            r.text += text
        }
        let rest = stream.flush()
        if !rest.isEmpty { onText(rest) }
        r.language = generation.multilingual ? language.flatMap { generation.code(of: $0) } : "en"
        return r
    }
}
