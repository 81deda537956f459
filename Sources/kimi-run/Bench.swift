import Foundation
import KAF
import KimiCLI
import KimiRuntime

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure LLM prefill and decode speed (llama-bench style: pp P, tg N), or an audio encoder's.",
        discussion:
            "Token ids are fixed pseudo-random text ids; only the text head runs (no MIMO branch). Reports the best of --repetitions runs. As in llama-bench, the two tests are separate: pp processes P tokens from an empty context, tg decodes N tokens one at a time starting at position --depth (default 0: an empty context, like llama-bench's default -d 0; the depth tokens are prefilled untimed). --stage whisper times the log-mel front end and the Whisper encoder on one 30 s window (whisper-bench and CTranslate2's encode() time the same window); --stage vq times the VQ tokenizer on 30 s of audio (its front end, encoder, pooling and codebook search); --stage detok times the audio detokenizer on a middle chunk of a stream as kimi-run talk makes it (30 codes after a first chunk: the DiT's ODE over 168 frames with the look-ahead, the τ = 999 pass, the vocoder on 156 frames), with its GFLOP/s and real-time factor (--ode-steps to change the 30 Euler steps)."
    )

    enum Stage: String, ExpressibleByArgument, CaseIterable { case llm, whisper, vq, detok }

    @OptionGroup var model: ModelArgument
    @Option(name: [.customShort("p"), .long], help: "Prompt tokens for the prefill test (0 = skip).") var promptTokens =
        512
    @Option(name: [.customShort("n"), .long], help: "Generated tokens for the decode test (0 = skip).") var genTokens =
        32
    @Option(name: [.customShort("d"), .long], help: "Context depth the decode test starts at (llama-bench -d).")
    var depth = 0
    @OptionGroup var threads: ThreadOptions
    @Option(name: [.customShort("r"), .long], help: "Repetitions; the best is reported.") var repetitions = 2
    @Option(help: "What to time: llm, whisper, vq or detok.") var stage = Stage.llm
    @Option(help: "--stage detok: Euler steps of the ODE (the official 30).") var odeSteps = 30
    @Flag(help: "Decode steps also run the MIMO branch and the audio head (a tts/talk lock-step step).")
    var audioHead = false
    @Flag(help: "Print one JSON object.") var json = false

    func validate() throws {
        if promptTokens < 0 || genTokens < 0 || depth < 0 || repetitions < 1 {
            throw ValidationError("counts must be positive")
        }
    }

    func run() throws {
        exitOnInterrupt()
        let f = try model.open()
        if stage == .detok { return try runDetokenizer(f) }
        if stage != .llm { return try runEncoder(f) }
        // Positions the tests use, without overflow (-d 2^63-1 trapped); the model is loaded with at most
        // its own context, and a test that does not fit is refused before its ids are allocated.
        let (tgEnd, overflow) = depth.addingReportingOverflow(genTokens)
        let needed = overflow ? Int.max : max(promptTokens, tgEnd)
        let llm = try KimiLLM(file: f, contextLength: needed == Int.max ? needed : needed + 1, threads: threads.count)
        guard needed <= llm.contextLength else {
            throw CLIError(
                "\(model.path): bench needs \(overflow ? "more than \(Int.max)" : String(needed)) positions "
                    + "(-p \(promptTokens), -d \(depth) + -n \(genTokens)), more than the model's context of "
                    + "\(llm.contextLength)")
        }
        let c = llm.config
        var rng = SplitMix64(seed: 42)
        let textVocab = min(c.tokenOffset, 150_000)
        let ids = (0 ..< max(promptTokens, depth, 1)).map { _ in Int(rng.next() % UInt64(textVocab)) }
        // The text blank on the audio stream (0 where the file has no tokenizer table).
        let blank = c.isKimi ? ((try? KimiSpecials(tokenizer: TiktokenBPE(kaf: f), file: f.path))?.blank ?? 0) : 0
        func now() -> Double { Double(DispatchTime.now().uptimeNanoseconds) / 1e9 }
        var pp = 0.0, tg = 0.0
        for _ in 0 ..< repetitions {
            if promptTokens > 0 {
                let t0 = now()
                try llm.prefill(
                    audioIds: c.isKimi ? Array(repeating: blank, count: promptTokens) : Array(ids.prefix(promptTokens)),
                    textIds: Array(ids.prefix(promptTokens)), addText: true, start: 0, wantAudio: false)
                pp = max(pp, Double(promptTokens) / (now() - t0))
            }
            if genTokens > 0 {
                if depth > 0 {
                    try llm.prefill(
                        audioIds: c.isKimi ? Array(repeating: blank, count: depth) : Array(ids.prefix(depth)),
                        textIds: Array(ids.prefix(depth)), addText: true, start: 0, wantAudio: false)
                }
                let t0 = now()
                for i in 0 ..< genTokens {
                    try llm.step(
                        audioId: blank, textId: ids[i % ids.count], addText: true, feature: nil, pos: depth + i,
                        wantAudio: audioHead)
                }
                tg = max(tg, Double(genTokens) / (now() - t0))
            }
        }
        let weights = f.entries.filter { $0.component == "llm" }.reduce(0) { $0 + $1.storedSize }
        // Bytes a decode step reads: every LLM matrix but the embedding (one row per stream), and with
        // --audio-head the MIMO layers and head; ÷ the memory bandwidth = the step rate's bound.
        let perStep = f.entries.filter {
            ($0.component == "llm" || (audioHead && $0.component == "mimo")) && !$0.name.contains("embed_tokens")
        }.reduce(0) { $0 + $1.storedSize }
        if json {
            print(
                JSONValue.object([
                    "model": .string(model.path), "threads": .int(Int64(llm.pool.threadCount)),
                    "pp_tokens": .int(Int64(promptTokens)), "pp_tokens_per_second": .double(pp),
                    "tg_tokens": .int(Int64(genTokens)), "tg_depth": .int(Int64(depth)),
                    "tg_tokens_per_second": .double(tg),
                    "llm_weight_bytes": .int(Int64(weights)), "audio_head": .bool(audioHead),
                    "step_read_bytes": .int(Int64(perStep)),
                ]).serialized())
        } else {
            print("model: \(model.path) (LLM weights \(formatBytes(weights))), threads \(llm.pool.threadCount)")
            if promptTokens > 0 { print(String(format: "pp%d: %.2f tokens/s", promptTokens, pp)) }
            if genTokens > 0 {
                print(
                    "tg\(genTokens)\(depth > 0 ? " @ d\(depth)" : "")\(audioHead ? " with the audio head" : ""): "
                        + String(format: "%.2f tokens/s", tg) + " (\(formatBytes(perStep)) read per step)")
            }
        }
    }

    /// One 30 s window through the front end and the Whisper encoder, or 30 s through the VQ
    /// tokenizer; the audio is a fixed chirp with noise (the time does not depend on the values).
    func runEncoder(_ f: KAFFile) throws {
        var rng = SplitMix64(seed: 7)
        let samples = (0 ..< LogMel.pieceSamples).map { i -> Float in
            let t = Float(i) / 16000
            return 0.3 * sin(2 * .pi * (200 + 40 * t) * t) + 0.01 * (Float(rng.next() % 2001) / 1000 - 1)
        }
        func now() -> Double { Double(DispatchTime.now().uptimeNanoseconds) / 1e9 }
        var best: [String: Double] = [:]
        func keep(_ name: String, _ seconds: Double) { best[name] = min(best[name] ?? .infinity, seconds) }
        let threadCount: Int
        if stage == .whisper {
            let encoder = try WhisperEncoder(file: f, threads: threads.count), mel = try LogMel(file: f)
            threadCount = encoder.threadCount
            var out = [Float](repeating: 0, count: encoder.frames * encoder.config.dModel)
            for _ in 0 ..< repetitions {
                let t0 = now()
                let piece = mel.whisperPieces(samples)[0]
                let t1 = now()
                piece.mel.withUnsafeBufferPointer { m in
                    out.withUnsafeMutableBufferPointer { encoder(mel: m.baseAddress!, into: $0.baseAddress!) }
                }
                keep("mel", t1 - t0)
                keep("encoder", now() - t1)
            }
        } else {
            let vq = try VQTokenizer(file: f, threads: threads.count)
            threadCount = vq.threadCount
            for _ in 0 ..< repetitions {
                let t0 = now()
                _ = vq(samples)
                keep("vq", now() - t0)
            }
        }
        let weights = f.entries.filter { $0.component == stage.rawValue }.reduce(0) { $0 + $1.storedSize }
        if json {
            var o: [String: JSONValue] = [
                "model": .string(model.path), "stage": .string(stage.rawValue), "threads": .int(Int64(threadCount)),
                "audio_seconds": .double(30), "weight_bytes": .int(Int64(weights)),
            ]
            for (k, v) in best { o[k + "_seconds"] = .double(v) }
            print(JSONValue.object(o).serialized())
        } else {
            print("model: \(model.path) (\(stage.rawValue) weights \(formatBytes(weights))), threads \(threadCount)")
            for (k, v) in best.sorted(by: { $0.key < $1.key }) {
                print(String(format: "%@: %.3f s per 30 s window", k, v))
            }
        }
    }

    /// A middle chunk of a detokenizer stream: the first chunk untimed, then one chunk of 30 codes
    /// timed (DiT and vocoder apart), from a fresh stream each repetition.
    func runDetokenizer(_ f: KAFFile) throws {
        var s = Detokenizer.Settings()
        s.odeSteps = odeSteps
        let d = try Detokenizer(file: f, threads: threads.count, settings: s)
        var rng = SplitMix64(seed: 11)
        let vocab = d.dit.config.semanticVocabSize
        let codes = (0 ..< 2 * s.chunkTokens).map { _ in Int(rng.next() % UInt64(vocab)) }
        var best = (dit: Double.infinity, vocoder: Double.infinity)
        var frames = 0
        for _ in 0 ..< repetitions {
            d.reset()
            var noise = SeededNoise(seed: 1)
            try d.push(Array(codes[..<s.firstChunkTokens]), isFinal: false, noise: &noise) { _ in }
            let (dit0, voc0) = (d.ditSeconds, d.vocoderSeconds)
            var samples = 0
            try d.push(Array(codes[s.firstChunkTokens...].prefix(s.chunkTokens)), isFinal: false, noise: &noise) {
                samples += $0.count
            }
            best = (min(best.dit, d.ditSeconds - dit0), min(best.vocoder, d.vocoderSeconds - voc0))
            frames = d.chunkMel.count / d.mels
        }
        // Work of the timed chunk: ODE over (look-ahead + chunk)·4 frames with the first chunk's
        // frames cached, the τ = 999 pass over the kept frames, the vocoder over held + kept frames.
        let held = s.lookAheadTokens * s.upsample, n = s.chunkTokens * s.upsample + held
        let cached = s.firstChunkTokens * s.upsample - held
        let ditFlops =
            Double(s.odeSteps - 1) * d.dit.flops(frames: n, cached: cached, runs: n / s.upsample)
            + d.dit.flops(frames: frames, cached: cached, runs: frames / s.upsample)
        let vocFrames = frames + (s.firstChunkTokens * s.upsample - held + 1) / 2
        let vocFlops = d.vocoder.flops(frames: vocFrames)
        let audio = Double(s.chunkTokens * d.samplesPerCode) / 24000
        let weights = f.entries.filter { $0.component == "dit" || $0.component == "vocoder" }.reduce(0) {
            $0 + $1.storedSize
        }
        if json {
            print(
                JSONValue.object([
                    "model": .string(model.path), "stage": .string("detok"), "threads": .int(Int64(d.dit.threadCount)),
                    "chunk_codes": .int(Int64(s.chunkTokens)), "ode_steps": .int(Int64(s.odeSteps)),
                    "audio_seconds": .double(audio), "dit_seconds": .double(best.dit),
                    "vocoder_seconds": .double(best.vocoder), "dit_gflops": .double(ditFlops / 1e9),
                    "vocoder_gflops": .double(vocFlops / 1e9), "vocoder_frames": .int(Int64(vocFrames)),
                    "rtf": .double((best.dit + best.vocoder) / audio), "weight_bytes": .int(Int64(weights)),
                ]).serialized())
        } else {
            print("model: \(model.path) (dit + vocoder weights \(formatBytes(weights))), threads \(d.dit.threadCount)")
            print(
                String(
                    format:
                        "chunk of %d codes (%.2f s of audio), %d ODE steps:\n  DiT     %.2f s  (%.0f GFLOP, %.0f GFLOP/s)\n  vocoder %.2f s  (%.0f GFLOP over %d frames, %.0f GFLOP/s)\n  real-time factor %.2f",
                    s.chunkTokens, audio, s.odeSteps, best.dit, ditFlops / 1e9, ditFlops / 1e9 / best.dit, best.vocoder,
                    vocFlops / 1e9, vocFrames, vocFlops / 1e9 / best.vocoder, (best.dit + best.vocoder) / audio))
        }
    }
}
