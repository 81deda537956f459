import Dispatch
import KAF

/// Audio → text (docs/ARCHITECTURE.md §2.3): `asr` and `ask`. 16 kHz audio → VQ codes (12.5 Hz)
/// and Whisper features regrouped to the same rate → one user audio message after the instruction
/// (as the official examples order them) → prefill with the features fused at the code positions →
/// the text-mode lock-step loop. Needs components llm, whisper, vq and frontend (no MIMO, no
/// detokenizer).
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
    let whisper: WhisperEncoder
    let vq: VQTokenizer

    public init(file: KAFFile, contextLength: Int? = nil, threads: Int = 0, options: TextChat.Options = .init()) throws
    {
        for c in ["llm", "whisper", "vq", "frontend"] where file.meta["components"]?[c] == nil {
            throw FormatError(
                file.path,
                "audio input needs component '\(c)', which this file lacks (convert with --components llm,whisper,vq)")
        }
        chat = try TextChat(file: file, contextLength: contextLength, threads: threads, options: options)
        guard chat.prompt != nil else { throw FormatError(file.path, "audio input needs a Kimi-Audio LLM") }
        whisper = try WhisperEncoder(file: file, threads: threads)
        vq = try VQTokenizer(file: file, threads: threads)
        let adaptorIn = chat.llm.config.adaptorIn, featureWidth = 4 * whisper.config.dModel
        guard adaptorIn == featureWidth else {
            throw FormatError(
                file.path, "the adaptor takes \(adaptorIn) features, the Whisper encoder gives \(featureWidth)")
        }
    }

    /// Answers `instruction` (nil: the audio alone) about 16 kHz `samples`; `onText` sees the answer
    /// as it is decoded, `onProgress` each encoded 30 s piece (done, total: Whisper's, then the VQ's).
    public func answer(
        _ samples: [Float], instruction: String?, onText: (String) -> Void = { _ in },
        onProgress: (Int, Int) -> Void = { _, _ in }
    ) throws -> Result {
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
            throw FormatError(chat.llm.file.path, "\(codes.count) codes but \(features.count / (4 * d)) feature rows")
        }
        var messages: [KimiPrompt.Message] = []
        if let instruction { messages.append(.init(.user, .text(instruction))) }
        messages.append(.init(.user, .audio(codes: codes)))
        let streams = chat.prompt!.build(messages, output: .text)
        let ctx = chat.llm.contextLength
        guard streams.count < ctx else {
            throw FormatError(
                chat.llm.file.path,
                "\(String(format: "%.1f", Double(samples.count) / 16000)) s of audio needs a prompt of \(streams.count) "
                    + "positions; the context holds \(ctx) (about \(max(0, ctx - (streams.count - codes.count) - 1) * 2 / 25) s of audio)"
            )
        }
        let turn = try features.withUnsafeBufferPointer { f in
            try chat.answer(
                streams, features: streams.featureRows.mapValues { f.baseAddress! + $0 * 4 * d }, onText: onText)
        }
        let seconds = { (a: UInt64, b: UInt64) in Double(b - a) / 1e9 }
        return Result(
            turn: turn, codes: codes, audioSeconds: Double(samples.count) / 16000,
            stages: [("mel", seconds(t0, t1)), ("whisper", seconds(t1, t2)), ("vq", seconds(t2, t3))],
            streams: streams, features: features)
    }
}
