import Foundation
import KAF
import KimiCLI
import KimiConvert

#if canImport(Glibc)
import Glibc
#endif

struct KimiConvertCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kimi-convert",
        abstract: "Convert the Kimi-Audio release (or a Hugging Face Qwen2 / Whisper checkpoint) into one .kaf file.",
        discussion: """
            IN is the release folder exactly as downloaded (Kimi-Audio-7B-Instruct: sharded safetensors,
            whisper-large-v3/, audio_detokenizer/, vocoder/, tiktoken.model, configs). The GLM-4-Voice
            tokenizer is found with --vq-tokenizer or as IN/glm-4-voice-tokenizer.

            Precision: --q4 / --q8 quantize the LLM's linear layers in symmetric groups (--group-size);
            the default policy keeps audio encoders, adaptor, embeddings and heads at >= 8 bits, the VQ
            codebook and small vectors at f32 and the vocoder at f16. --keep GLOB=TYPE overrides it
            (types: f32 f16 bf16 q8 q4, or e.g. q4_g64). The chosen type, the reason and the
            quantization error of every tensor are stored in the file.

            Examples:
              kimi-convert --q4 Kimi-Audio-7B-Instruct/ kimi-q4.kaf
              kimi-convert --q8 --vq-tokenizer glm-4-voice-tokenizer/ Kimi-Audio-7B-Instruct/ kimi-q8.kaf
              kimi-convert --q4 --group-size 64 --keep 'whisper.*=q8' --keep 'vocoder.*=f16' in/ out.kaf
              kimi-convert --dry-run --q4 in/ out.kaf
            """)

    @Flag(name: .customLong("q4"), help: "4-bit groups for the LLM's linear layers.") var q4 = false
    @Flag(name: .customLong("q8"), help: "8-bit groups for the LLM's linear layers.") var q8 = false
    @Flag(name: .customLong("f16"), help: "No quantization; 16-bit IEEE floats.") var f16 = false
    @Flag(name: .customLong("bf16"), help: "No quantization; bfloat16 (the release's own type).") var bf16 = false
    @Flag(name: .customLong("f32"), help: "No quantization; 32-bit floats (the parity baseline).") var f32 = false
    @Option(name: .long, help: "Weights per quantization group: 32, 64 or 128.") var groupSize = 32
    @Option(
        name: .customLong("keep"),
        help: ArgumentHelp(
            "Override the type of tensors matching a glob, e.g. 'whisper.*=q8' (a glob matching no tensor is an error).",
            valueName: "GLOB=TYPE")
    )
    var keep: [String] = []
    @Option(name: .long, help: "Comma-separated subset of llm,mimo,whisper,vq,dit,vocoder.") var components: String?
    @Option(name: .long, help: "Folder of THUDM/glm-4-voice-tokenizer.") var vqTokenizer: String?
    @Flag(name: .long, help: "Print the plan (every tensor, source, target type, bytes) and write nothing.")
    var dryRun = false
    @Flag(
        name: .long,
        help:
            "Store quantized matrices row-major (q4_g32, ...) instead of 8 rows interleaved (q4_g32_r8, ...), the layout the runtime reads fastest."
    ) var noInterleave = false
    @Flag(name: .long, help: "Overwrite OUT if it exists.") var force = false
    @Option(name: .long, help: "Threads (default: all cores).") var threads: Int?
    @Flag(name: .long, help: "Print the plan or the result as one JSON object.") var json = false
    @Argument(help: "Input folder.") var input: String
    @Argument(help: "Output .kaf file.") var output: String

    func validate() throws {
        let n = [q4, q8, f16, bf16, f32].filter { $0 }.count
        guard n == 1 else { throw ValidationError("choose exactly one of --q4, --q8, --f16, --bf16, --f32") }
        guard [32, 64, 128].contains(groupSize) else { throw ValidationError("--group-size must be 32, 64 or 128") }
        if let t = threads, t < 1 { throw ValidationError("--threads must be at least 1") }
        if let t = threads, t > ThreadOptions.maximum {
            throw ValidationError(
                "--threads \(t) is more than this machine can run (at most \(ThreadOptions.maximum) here)")
        }
        // Before the work, not after it: an empty path or a folder cannot receive the file.
        if output.isEmpty { throw ValidationError("the output path is empty") }
        if !dryRun {
            do { try AtomicFile.checkTarget(output) } catch let e as FormatError {
                throw ValidationError(e.description)
            }
        }
    }

    func policy() throws -> PrecisionPolicy {
        let mode: PrecisionPolicy.Mode =
            q4
            ? .quantized(bits: 4, group: groupSize)
            : q8
                ? .quantized(bits: 8, group: groupSize)
                : .float(f16 ? .f16 : bf16 ? .bf16 : .f32)
        var keeps: [(glob: String, type: DType)] = []
        for k in keep {
            guard let eq = k.lastIndex(of: "=") else { throw CLIError("--keep '\(k)': expected GLOB=TYPE") }
            let glob = String(k[..<eq]), tname = String(k[k.index(after: eq)...])
            let type: DType?
            switch tname {
            case "q8": type = DType.quantized(bits: 8, group: groupSize)
            case "q4": type = DType.quantized(bits: 4, group: groupSize)
            default: type = DType(name: tname)
            }
            guard let t = type, t.isFloat || t.isQuantized else {
                throw CLIError("--keep '\(k)': unknown type '\(tname)' (f32, f16, bf16, q8, q4, q8_g64, q4_g128, ...)")
            }
            keeps.append((glob, t))
        }
        return PrecisionPolicy(mode: mode, keeps: keeps, interleave: !noInterleave)
    }

    func run() throws {
        let opts = ConvertOptions(
            input: input, policy: try policy(),
            components: components.map { $0.split(separator: ",").map(String.init) },
            vqTokenizer: vqTokenizer)
        let plan = try Converter.plan(opts)
        if dryRun {
            printPlan(plan)
            return
        }
        if !force && FileManager.default.fileExists(atPath: output) {
            throw CLIError("\(output): already exists (use --force to overwrite)")
        }
        var runner = ConversionRunner(plan: plan, threads: threads ?? ProcessInfo.processInfo.activeProcessorCount)
        runner.commandLine = CommandLine.arguments.joined(separator: " ")
        let bar = ProgressLine()
        let start = Date()
        let errors = try runner.write(to: output, overwrite: force) { p in bar.update(p, since: start) }
        bar.finish()
        let secs = Date().timeIntervalSince(start)
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        let peak = Int(usage.ru_maxrss) * 1024
        let outSize = (try? FileManager.default.attributesOfItem(atPath: output)[.size] as? Int) ?? 0
        let quantized = plan.items.filter { $0.target.isQuantized }
        let worst = quantized.compactMap { i in errors[i.name]?.snrDB.map { (i.name, $0) } }.min { $0.1 < $1.1 }
        if json {
            let o: JSONValue = [
                "output": .string(output), "tensors": .int(Int64(plan.items.count)),
                "input_bytes": .int(Int64(plan.inputBytes)), "output_bytes": .int(Int64(outSize)),
                "seconds": .double(secs), "gb_per_s": .double(Double(plan.inputBytes) / 1e9 / max(secs, 1e-9)),
                "peak_rss_bytes": .int(Int64(peak)),
                "worst_snr_db": worst.map { ["tensor": .string($0.0), "snr_db": .double($0.1)] } ?? .null,
            ]
            print(o.serialized())
        } else {
            print(
                "wrote \(output): \(plan.items.count) tensors, \(formatBytes(outSize)) from \(formatBytes(plan.inputBytes)) in \(String(format: "%.1f", secs)) s (\(String(format: "%.2f", Double(plan.inputBytes) / 1e9 / max(secs, 1e-9))) GB/s), peak RSS \(formatBytes(peak))"
            )
            if let w = worst { print(String(format: "lowest quantization SNR: %.1f dB (%@)", w.1, w.0 as NSString)) }
        }
    }

    func printPlan(_ plan: ConversionPlan) {
        if json {
            let items: [JSONValue] = plan.items.map { i in
                [
                    "name": .string(i.name), "source": .string(i.producer.source),
                    "source_dtype": .string(i.producer.sourceDType),
                    "dtype": .string(i.target.name), "shape": .array(i.producer.shape.map { .int(Int64($0)) }),
                    "bytes": .int(Int64(i.outputBytes)), "reason": .string(i.reason),
                ]
            }
            let dropped: [JSONValue] = plan.components.flatMap(\.dropped).map {
                ["source": .string($0.source), "reason": .string($0.reason)]
            }
            print(
                JSONValue.object([
                    "tensors": .array(items), "dropped": .array(dropped),
                    "input_bytes": .int(Int64(plan.inputBytes)), "output_bytes": .int(Int64(plan.outputBytes)),
                ]).serialized())
            return
        }
        print("plan: \(plan.sourceKind) folder \(input) -> \(output) (\(plan.policy.modeName))")
        for c in plan.components {
            let bytes = c.items.reduce(0) { $0 + $1.outputBytes }
            print(
                "\n[\(c.name)] \(c.items.count) tensors, \(formatBytes(bytes))\(c.blobs.isEmpty ? "" : ", blobs: " + c.blobs.map(\.name).joined(separator: ", "))"
            )
            for i in c.items {
                print(
                    String(
                        format: "  %-48@ %-5@ -> %-8@ %-18@ %10@  %@  (%@)", i.name as NSString,
                        i.producer.sourceDType as NSString,
                        i.target.name as NSString, "\(i.producer.shape)" as NSString,
                        formatBytes(i.outputBytes) as NSString,
                        i.producer.source as NSString, i.reason as NSString))
            }
            // Drops sharing a reason are listed once (the Whisper decoder alone has hundreds).
            var byReason: [(String, [String])] = []
            for d in c.dropped {
                if let i = byReason.firstIndex(where: { $0.0 == d.reason }) {
                    byReason[i].1.append(d.source)
                } else {
                    byReason.append((d.reason, [d.source]))
                }
            }
            for (reason, sources) in byReason {
                let shown = sources.prefix(3).joined(separator: ", ") + (sources.count > 3 ? ", ..." : "")
                print("  dropped \(sources.count): \(shown)  (\(reason))")
            }
        }
        print(
            "\ntotal: \(plan.items.count) tensors, \(formatBytes(plan.inputBytes)) read -> \(formatBytes(plan.outputBytes)) written"
        )
    }
}

/// Progress on stderr: a redrawn line on a terminal, a plain line per ~5% otherwise.
final class ProgressLine {
    let tty = isatty(2) != 0
    var lastPercent = -1
    var lastDraw = Date.distantPast

    func update(_ p: ConversionProgress, since start: Date) {
        let frac = p.bytesTotal > 0 ? Double(p.bytesRead) / Double(p.bytesTotal) : 1
        let pct = Int(frac * 100)
        let elapsed = Date().timeIntervalSince(start)
        let rate = Double(p.bytesRead) / 1e9 / max(elapsed, 1e-9)
        let eta = frac > 0 ? elapsed * (1 - frac) / frac : 0
        let text = String(
            format: "[%d/%d] %3d%%  %.2f/%.2f GB  %.2f GB/s  ETA %.0fs  %@", p.tensorIndex + 1, p.tensorCount, pct,
            Double(p.bytesRead) / 1e9, Double(p.bytesTotal) / 1e9, rate, eta, p.name as NSString)
        if tty {
            guard Date().timeIntervalSince(lastDraw) > 0.1 else { return }
            lastDraw = Date()
            fputs("\r\u{1B}[K" + text, stderr)
        } else if pct / 5 != lastPercent / 5 {
            lastPercent = pct
            fputs(text + "\n", stderr)
        }
    }

    func finish() { if tty { fputs("\r\u{1B}[K", stderr) } }
}

runCommand(KimiConvertCommand.self)
