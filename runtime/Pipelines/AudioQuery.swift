import Dispatch
import KAF

/// The audio side of a Kimi prompt (docs/ARCHITECTURE.md §2.3): 16 kHz samples → VQ codes
/// (12.5 Hz) and Whisper features regrouped to the same rate ([n, 4d]). Used by asr, ask and talk.
public final class AudioEncoders {
    public struct Encoded {
        /// The VQ codes (raw, 0-based) and one feature row of 4d floats per code.
        public var codes: [Int]
        public var features: [Float]
        /// Seconds per stage: mel, whisper, vq.
        public var stages: [(name: String, seconds: Double)]
    }

    let whisper: WhisperEncoder
    let vq: VQTokenizer
    let file: KAFFile
    var path: String { file.path }
    public var featureWidth: Int { 4 * whisper.config.dModel }

    /// `task` names what needs audio input, for the error when a component is missing.
    public init(file: KAFFile, threads: Int = 0, task: String = "audio input") throws {
        for c in ["whisper", "vq", "frontend"] where file.meta["components"]?[c] == nil {
            throw FormatError(
                file.path,
                "\(task) needs component '\(c)', which this file lacks (convert with --components llm,whisper,vq)")
        }
        whisper = try WhisperEncoder(file: file, threads: threads)
        vq = try VQTokenizer(file: file, threads: threads)
        self.file = file
    }

    /// `onProgress` sees each encoded 30 s piece (done, total: Whisper's, then the VQ's).
    public func encode(_ samples: [Float], onProgress: (Int, Int) -> Void = { _, _ in }) throws -> Encoded {
        func now() -> UInt64 { DispatchTime.now().uptimeNanoseconds }
        let t0 = now()
        let pieces = vq.frontEnd.whisperPieces(samples)  // one front end (its filters) for both paths
        let t1 = now()
        let d = whisper.config.dModel
        var features: [Float] = []
        var frame = [Float](repeating: 0, count: whisper.frames * d)
        let vqPieces = LogMel.pieces(samples.count).count
        for (k, p) in pieces.enumerated() {
            onProgress(k, pieces.count + vqPieces)
            p.mel.withUnsafeBufferPointer { m in
                frame.withUnsafeMutableBufferPointer { whisper(mel: m.baseAddress!, into: $0.baseAddress!) }
            }
            features += frame.prefix(4 * p.tokens * d)  // [4n, d] read as [n, 4d]
        }
        let t2 = now()
        let codes = vq(samples) { done, _ in onProgress(pieces.count + done, pieces.count + vqPieces) }
        let t3 = now()
        guard codes.count * 4 * d == features.count else {
            throw FormatError(path, "\(codes.count) codes but \(features.count / (4 * d)) feature rows")
        }
        let seconds = { (a: UInt64, b: UInt64) in Double(b - a) / 1e9 }
        return Encoded(
            codes: codes, features: features,
            stages: [("mel", seconds(t0, t1)), ("whisper", seconds(t1, t2)), ("vq", seconds(t2, t3))])
    }

    /// Lets the system drop the encoders' weight pages (they are read again from the file if used
    /// again): talk encodes once, then needs the memory for the LLM and the detokenizer.
    public func releaseWeights() { file.releasePages(of: ["whisper", "vq"]) }

    /// The error for audio that needs more prompt positions than the context holds.
    static func tooLong(_ file: String, samples: Int, prompt: Int, codes: Int, context ctx: Int) -> FormatError {
        FormatError(
            file,
            "\(String(format: "%.1f", Double(samples) / 16000)) s of audio needs a prompt of \(prompt) "
                + "positions; the context holds \(ctx) (about \(max(0, ctx - (prompt - codes) - 1) * 2 / 25) s of audio)"
        )
    }
}

/// Audio → text (docs/ARCHITECTURE.md §2.3): `asr` and `ask`. The audio's codes and features
/// (AudioEncoders) → one user audio message after the instruction (as the official examples
/// order them) → prefill with the features fused at the code positions → the text-mode lock-step
/// loop. Needs components llm, whisper, vq and frontend (no MIMO, no detokenizer).
public final class AudioQuery {
    /// The official transcription instruction (infer.py): "Please convert the audio content to text."
    public static let asrInstruction = "请将音频内容转换为文字。"

    public struct Result {
        public var turn: TextChat.Turn
        /// The VQ codes of the input (raw, 0-based).
        public var codes: [Int]
        public var audioSeconds: Double
        /// Seconds per stage: mel, whisper, vq (prefill and generation are in `turn`).
        public var stages: [(name: String, seconds: Double)]
        /// The prompt as prefilled, and the feature rows of its continuous positions ([n, 4d]).
        public var streams: KimiPrompt.Streams
        public var features: [Float]
    }

    public let chat: TextChat
    let encoders: AudioEncoders

    public init(file: KAFFile, contextLength: Int? = nil, threads: Int = 0, options: TextChat.Options = .init()) throws
    {
        if file.meta["components"]?["llm"] == nil {
            throw FormatError(
                file.path,
                "audio input needs component 'llm', which this file lacks (convert with --components llm,whisper,vq)")
        }
        encoders = try AudioEncoders(file: file, threads: threads)
        chat = try TextChat(file: file, contextLength: contextLength, threads: threads, options: options)
        guard chat.prompt != nil else { throw FormatError(file.path, "audio input needs a Kimi-Audio LLM") }
        let adaptorIn = chat.llm.config.adaptorIn
        guard adaptorIn == encoders.featureWidth else {
            throw FormatError(
                file.path, "the adaptor takes \(adaptorIn) features, the Whisper encoder gives \(encoders.featureWidth)"
            )
        }
    }

    /// Answers `instruction` (nil: the audio alone) about 16 kHz `samples`; `onText` sees the answer
    /// as it is decoded, `onProgress` each encoded 30 s piece (done, total: Whisper's, then the VQ's).
    public func answer(
        _ samples: [Float], instruction: String?, onText: (String) -> Void = { _ in },
        onProgress: (Int, Int) -> Void = { _, _ in }
    ) throws -> Result {
        let e = try encoders.encode(samples, onProgress: onProgress)
        var messages: [KimiPrompt.Message] = []
        if let instruction { messages.append(.init(.user, .text(instruction))) }
        messages.append(.init(.user, .audio(codes: e.codes)))
        let streams = chat.prompt!.build(messages, output: .text)
        let ctx = chat.llm.contextLength
        guard streams.count < ctx else {
            throw AudioEncoders.tooLong(
                chat.llm.file.path, samples: samples.count, prompt: streams.count, codes: e.codes.count, context: ctx)
        }
        let w = encoders.featureWidth
        let turn = try e.features.withUnsafeBufferPointer { f in
            try chat.answer(
                streams, features: streams.featureRows.mapValues { f.baseAddress! + $0 * w }, onText: onText)
        }
        return Result(
            turn: turn, codes: e.codes, audioSeconds: Double(samples.count) / 16000, stages: e.stages,
            streams: streams, features: e.features)
    }
}
