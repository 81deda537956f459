import Foundation
import Testing

@testable import KAF

/// The CLIs as a user runs them: the built executables, their exit status and stderr.
enum CLI {
    static let packageRoot: String = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0 ..< 3 { url.deleteLastPathComponent() }
        return url.path
    }()
    static let fixtures = packageRoot + "/Tests/Fixtures"

    /// The folder `swift build` put the executables in (debug, as the tests are built).
    static let binDir: String = {
        for c in [".build/debug", ".build/x86_64-unknown-linux-gnu/debug"]
        where FileManager.default.fileExists(atPath: "\(packageRoot)/\(c)/kimi-run") {
            return "\(packageRoot)/\(c)"
        }
        return packageRoot + "/.build/debug"
    }()

    struct Result {
        let status: Int32
        let stdout: String
        let stderr: String
    }

    static func run(_ tool: String, _ args: [String]) throws -> Result {
        try execute(binDir + "/" + tool, args)
    }

    /// A /bin/sh script with $BIN set to the executables' folder (for bytes Process cannot pass:
    /// invalid UTF-8 in argv or on stdin).
    static func shell(_ script: String) throws -> Result {
        try execute(
            "/bin/sh", ["-c", script], environment: ProcessInfo.processInfo.environment.merging(["BIN": binDir]) { $1 })
    }

    private static func execute(_ path: String, _ args: [String], environment: [String: String]? = nil) throws -> Result
    {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: path)
        p.arguments = args
        if let environment { p.environment = environment }
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        let o = out.fileHandleForReading.readDataToEndOfFile(), e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return Result(
            status: p.terminationStatus, stdout: String(decoding: o, as: UTF8.self),
            stderr: String(decoding: e, as: UTF8.self))
    }

    static func tempDir() -> String {
        let d = NSTemporaryDirectory() + "cli-\(UUID().uuidString)"
        try? FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
        return d
    }
}

@Suite(.serialized) struct CLITests {
    @Test func convertThenInfo() throws {
        let dir = CLI.tempDir(), out = dir + "/tiny-q4.kaf"
        let c = try CLI.run("kimi-convert", ["--q4", CLI.fixtures + "/tiny-release", out])
        #expect(c.status == 0, "\(c.stderr)")
        #expect(c.stdout.contains("wrote \(out)"))
        let i = try CLI.run("kimi-run", [out, "info", "--verify"])
        #expect(i.status == 0, "\(i.stderr)")
        for comp in ["llm", "mimo", "whisper", "vq", "dit", "vocoder"] {
            #expect(i.stdout.contains("\n\(comp) "), "\(comp) listed")
        }
        #expect(i.stdout.contains("q4_g32") && i.stdout.contains("all 1219 entries verified"))
        let j = try CLI.run("kimi-run", ["info", out, "--json", "--tensors"])
        #expect(j.status == 0)
        let doc = try JSONValue.parse(j.stdout, file: "stdout")
        #expect(doc["tensors"]?.arrayValue?.count == 1219)
        #expect(doc["components"]?["llm"]?["bits_per_weight"]?.doubleValue ?? 0 > 4.5)
        // An existing output is kept unless --force.
        let again = try CLI.run("kimi-convert", ["--q8", CLI.fixtures + "/tiny-release", out])
        #expect(again.status == 2 && again.stderr.contains("already exists"))
        // A flipped byte in tensor data: --verify catches it; truncation is caught without it.
        var bytes = try Data(contentsOf: URL(fileURLWithPath: out))
        bytes[bytes.count / 2] ^= 0x55
        try bytes.write(to: URL(fileURLWithPath: dir + "/flipped.kaf"))
        let v = try CLI.run("kimi-run", [dir + "/flipped.kaf", "info", "--verify"])
        #expect(v.status == 2 && v.stderr.contains("checksum mismatch"), "\(v.stderr)")
        try bytes.prefix(bytes.count - 100).write(to: URL(fileURLWithPath: dir + "/cut.kaf"))
        let t = try CLI.run("kimi-run", [dir + "/cut.kaf", "info"])
        #expect(t.status == 2 && t.stderr.contains("truncated"), "\(t.stderr)")
        let dry = try CLI.run(
            "kimi-convert", ["--dry-run", "--q8", CLI.fixtures + "/tiny-release", dir + "/never.kaf"])
        #expect(
            dry.status == 0 && dry.stdout.contains("llm.layers.0.mlp.up_proj.weight") && dry.stdout.contains("q8_g32"))
        #expect(!FileManager.default.fileExists(atPath: dir + "/never.kaf"))
    }

    /// Every malformed .kaf of the reader's table (KAFMalformedTests), through the CLI: exit 2,
    /// one line naming the file, no crash.
    @Test(arguments: malformedKAFCases.filter { !$0.expect.isEmpty })
    func infoOnMalformedFiles(_ c: MalformedKAF) throws {
        let path = CLI.tempDir() + "/bad.kaf"
        FileManager.default.createFile(atPath: path, contents: Data(c.make()))
        let r = try CLI.run("kimi-run", [path, "info", "--verify"])
        #expect(r.status == 2, "\(c.name): status \(r.status)")
        #expect(r.stderr.hasPrefix("kimi-run: error: \(path):"), "\(c.name): \(r.stderr)")
        #expect(r.stderr.contains(c.expect), "\(c.name): \(r.stderr)")
        #expect(r.stderr.split(separator: "\n").count == 1, "\(c.name): \(r.stderr)")
    }

    /// A broken input of each reader, through kimi-convert: exit 2, one line naming the file.
    @Test func convertOnBrokenInputs() throws {
        let dir = CLI.tempDir()
        let cases: [(String, String)] = [
            ("readers/malformed/safetensors/header_huge.safetensors", "header length"),
            ("pickle/evil_os_system.pt", "os.system"),
        ]
        for (rel, want) in cases {
            let src = CLI.fixtures + "/" + rel
            guard FileManager.default.fileExists(atPath: src) else {
                Issue.record("fixture \(rel) missing")
                continue
            }
            let folder = dir + "/" + (rel as NSString).lastPathComponent + ".d"
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            if rel.hasSuffix(".safetensors") {
                try FileManager.default.copyItem(atPath: CLI.fixtures + "/tiny-qwen2", toPath: folder + "/q")
                try FileManager.default.removeItem(atPath: folder + "/q/model.safetensors")
                try FileManager.default.copyItem(atPath: src, toPath: folder + "/q/model.safetensors")
                let r = try CLI.run("kimi-convert", ["--q8", folder + "/q", folder + "/out.kaf"])
                #expect(
                    r.status == 2 && r.stderr.contains(folder + "/q/model.safetensors") && r.stderr.contains(want),
                    "\(rel): \(r.stderr)")
            } else {
                try FileManager.default.copyItem(atPath: CLI.fixtures + "/tiny-release", toPath: folder + "/k")
                try FileManager.default.removeItem(atPath: folder + "/k/vocoder/model.pt")
                try FileManager.default.copyItem(atPath: src, toPath: folder + "/k/vocoder/model.pt")
                let r = try CLI.run("kimi-convert", ["--q8", folder + "/k", folder + "/out.kaf"])
                #expect(
                    r.status == 2 && r.stderr.contains("vocoder/model.pt") && r.stderr.contains(want),
                    "\(rel): \(r.stderr)")
            }
            #expect(!FileManager.default.fileExists(atPath: folder + "/out.kaf"))
            #expect(
                try FileManager.default.contentsOfDirectory(atPath: folder).allSatisfy { !$0.hasPrefix(".out.kaf") })
        }
    }

    /// kimi-run asr / ask on the tiny release: the VQ codes of the input equal the official
    /// GLM-4-Voice tokenizer's (golden vq_tiny_fox_22k), the prompt has the official layout's length
    /// (user start, instruction, media begin, n codes, media end, ct, msg end, assistant start), and
    /// bad inputs are one line with exit 2.
    @Test func asrAndAskOnAudio() throws {
        let dir = CLI.tempDir()
        let k = dir + "/k.kaf", llmOnly = dir + "/llm.kaf"
        #expect(try CLI.run("kimi-convert", ["--f32", CLI.fixtures + "/tiny-release", k]).status == 0)
        #expect(try CLI.run("kimi-convert", ["--q8", "--components", "llm", CLI.fixtures + "/tiny-release", llmOnly]).status == 0)
        let wav = CLI.fixtures + "/audio/fox_22k.wav"
        let r = try CLI.run("kimi-run", [k, "asr", wav, "--json", "--max-tokens", "4", "-t", "2"])
        #expect(r.status == 0, "\(r.stderr)")
        let j = try JSONValue.parse(r.stdout, file: "stdout")
        let golden = try SafetensorsFile(path: CLI.fixtures + "/golden/vq_tiny_fox_22k.safetensors")
        let want = try golden.tensor(named: "out.codes").int64s().map { Int($0) }
        #expect(j["codes"]?.arrayValue?.compactMap(\.intValue) == want)
        let bare = try CLI.run("kimi-run", [k, "asr", wav, "--json", "--max-tokens", "2", "--instruction", ""])
        let bj = try JSONValue.parse(bare.stdout, file: "stdout")
        // An empty instruction is a text message of no ids: user start, media begin, codes, media end, ct, msg end, assistant start.
        #expect(bj["prompt_tokens"]?.intValue == want.count + 6, "\(bare.stdout)")
        #expect((j["prompt_tokens"]?.intValue ?? 0) > want.count + 6)
        // Audio on stdin and through a named pipe (as bash's `<(…)` passes it): the same codes.
        for script in ["\"$BIN/kimi-run\" '\(k)' asr --json --max-tokens 1 - < '\(wav)'",
                       "mkfifo '\(dir)/fifo' && (cat '\(wav)' > '\(dir)/fifo' &) && \"$BIN/kimi-run\" '\(k)' asr --json --max-tokens 1 '\(dir)/fifo'"] {
            let s = try CLI.shell(script)
            let sj = try JSONValue.parse(s.stdout, file: "stdout")
            #expect(s.status == 0 && sj["codes"]?.arrayValue?.compactMap(\.intValue) == want, "\(script): \(s.stderr)")
        }
        let a = try CLI.run("kimi-run", [k, "ask", CLI.fixtures + "/audio/fox_44k_stereo.flac", "What is said?", "--max-tokens", "3"])
        #expect(a.status == 0, "\(a.stderr)")
        for (args, want) in [
            ([k, "asr", "/etc/hostname"], "cannot read this audio file"),
            ([k, "asr", dir + "/missing.wav"], "cannot read this audio file"),
            ([llmOnly, "asr", wav], "needs component 'whisper'"),
            ([k, "asr", wav, "--context", "64"], "the context holds 64"),
        ] {
            let e = try CLI.run("kimi-run", args)
            #expect(e.status == 2 && e.stderr.contains(want) && e.stderr.split(separator: "\n").count == 1, "\(args): \(e.stderr)")
        }
    }

    /// kimi-run asr on a plain Whisper file (the tiny random multilingual fixture): the window's ids
    /// equal transformers' greedy ids (golden whisper_tiny_decoder_fox_en), --json has language and
    /// segments, digital silence is an empty transcript with exit 0, and --language errors are one line.
    @Test func whisperAsr() throws {
        let dir = CLI.tempDir()
        let w = dir + "/w.kaf", k = dir + "/k.kaf", silence = dir + "/silence.wav"
        #expect(try CLI.run("kimi-convert", ["--f32", CLI.fixtures + "/tiny-whisper", w]).status == 0)
        #expect(try CLI.run("kimi-convert", ["--q8", "--components", "whisper", CLI.fixtures + "/tiny-release", k]).status == 0)
        let info = try CLI.run("kimi-run", [w, "info"])
        #expect(info.stdout.contains("yes  asr (plain Whisper"), "\(info.stdout)")
        let golden = try SafetensorsFile(path: CLI.fixtures + "/golden/whisper_tiny_decoder_fox_en.safetensors")
        let want = try golden.tensor(named: "out.greedy").int64s().map { Int($0) }
        let cap = golden.metadata["max_new_tokens"] ?? "24"
        let wav = CLI.fixtures + "/audio/fox_22k.wav"
        let r = try CLI.run("kimi-run", [w, "asr", "--json", "--language", "en", "--max-tokens", cap, "-t", "2", wav])
        #expect(r.status == 0, "\(r.stderr)")
        let j = try JSONValue.parse(r.stdout, file: "stdout")
        #expect(j["language"]?.stringValue == "en")
        let seg = j["segments"]?.arrayValue ?? []
        #expect(seg.count == 1 && seg.first?["tokens"]?.arrayValue?.compactMap(\.intValue) == want, "\(r.stdout)")
        #expect(j["seconds"]?["encoder"]?.doubleValue != nil && j["rtf"]?.doubleValue != nil)
        // 3 s of digital silence (16-bit zeros): no text, exit 0.
        var bytes = Array("RIFF".utf8) + le(36 + 96000) + Array("WAVEfmt ".utf8) + le(16) + [1, 0, 1, 0] + le(16000)
        bytes += le(32000) + [2, 0, 16, 0] + Array("data".utf8) + le(96000) + [UInt8](repeating: 0, count: 96000)
        try Data(bytes).write(to: URL(fileURLWithPath: silence))
        let q = try CLI.run("kimi-run", [w, "asr", "--json", silence])
        let qj = try JSONValue.parse(q.stdout, file: "stdout")
        #expect(q.status == 0 && qj["text"]?.stringValue == "", "\(q.stdout) \(q.stderr)")
        for (args, want) in [
            ([w, "asr", "--language", "xx", wav], "unknown language 'xx' (this model knows: de en es fr ja zh)"),
            ([k, "asr", "--language", "en", wav], "--language: only plain Whisper files take it"),
        ] {
            let e = try CLI.run("kimi-run", args)
            #expect(e.status == 2 && e.stderr.contains(want) && e.stderr.split(separator: "\n").count == 1, "\(args): \(e.stderr)")
        }
    }

    /// tts and talk as a user runs them: a 24 kHz mono WAV of 1920 samples per audio code, written
    /// atomically (nothing else left in the folder); `-o -` streams an open-length header and the
    /// samples with the JSON on stderr; bad inputs are one line and exit 2 before any generation.
    @Test func speechOutput() throws {
        let dir = CLI.tempDir(), k = dir + "/k.kaf", partial = dir + "/partial.kaf"
        #expect(try CLI.run("kimi-convert", ["--f32", CLI.fixtures + "/tiny-release", k]).status == 0)
        #expect(
            try CLI.run("kimi-convert", ["--q8", "--components", "llm,whisper,vq", CLI.fixtures + "/tiny-release", partial])
                .status == 0)
        let common = ["--json", "--max-tokens", "120", "--ode-steps", "3", "-t", "2", "--seed", "5"]
        let r = try CLI.run("kimi-run", [k, "tts", "Hello there.", "-o", dir + "/a.wav"] + common)
        #expect(r.status == 0, "\(r.stderr)")
        let j = try JSONValue.parse(r.stdout, file: "stdout")
        let codes = j["audio_tokens"]?.intValue ?? -1
        #expect(codes > 0 && j["seconds"]?["dit"]?.doubleValue != nil && j["first_audio_seconds"]?.doubleValue != nil)
        let wav = try [UInt8](Data(contentsOf: URL(fileURLWithPath: dir + "/a.wav")))
        func u32(_ b: [UInt8], _ o: Int) -> Int { (0 ..< 4).reduce(0) { $0 | Int(b[o + $1]) << (8 * $1) } }
        #expect(wav.count == 44 + 2 * 1920 * codes && u32(wav, 24) == 24000 && wav[22] == 1 && wav[34] == 16)
        #expect(u32(wav, 40) == 2 * 1920 * codes, "data size")
        let left = try FileManager.default.contentsOfDirectory(atPath: dir).sorted()
        #expect(left == ["a.wav", "k.kaf", "partial.kaf"], "\(left)")

        let stream = try CLI.shell(
            "\"$BIN/kimi-run\" '\(k)' tts 'Hello there.' -o - \(common.joined(separator: " ")) > '\(dir)/s.wav'")
        #expect(stream.status == 0, "\(stream.stderr)")
        let sj = try JSONValue.parse(stream.stderr, file: "stderr")
        #expect(sj["audio_tokens"]?.intValue == codes, "same seed, same speech")
        let s = try [UInt8](Data(contentsOf: URL(fileURLWithPath: dir + "/s.wav")))
        #expect(s.count == wav.count && u32(s, 4) == 0xFFFF_FFFF && u32(s, 40) == 0xFFFF_FFFF)
        let sameSamples = s[44...].elementsEqual(wav[44...])
        #expect(sameSamples, "the streamed samples are the file's")

        let t = try CLI.run("kimi-run", [k, "talk", CLI.fixtures + "/audio/fox_22k.wav", "-o", dir + "/t.wav", "--float"] + common)
        #expect(t.status == 0, "\(t.stderr)")
        let tj = try JSONValue.parse(t.stdout, file: "stdout")
        let tw = try [UInt8](Data(contentsOf: URL(fileURLWithPath: dir + "/t.wav")))
        #expect(abs((tj["input_seconds"]?.doubleValue ?? 0) - 3.2) < 0.1 && tw[34] == 32 && tw[20] == 3, "float WAV")

        for (args, want) in [
            ([partial, "tts", "hi", "-o", dir + "/x.wav"], "speech output needs components mimo, dit, vocoder"),
            ([k, "tts", "hi", "-o", dir + "/no/x.wav"], "/no/x.wav: cannot create the output file"),
            ([k, "tts", " ", "-o", dir + "/x.wav"], "TEXT is empty"),
            ([k, "talk", dir + "/missing.wav", "-o", dir + "/x.wav"], "missing.wav"),
            ([k, "tts", "Hello there.", "-o", dir + "/x.wav", "--context", "40"], "no room for a spoken answer"),
        ] {
            let e = try CLI.run("kimi-run", args)
            #expect(e.status == 2 && e.stderr.contains(want), "\(args): \(e.stderr)")
            #expect(e.stderr.hasPrefix("kimi-run: error:"), "\(e.stderr)")
        }
        #expect(!FileManager.default.fileExists(atPath: dir + "/x.wav"))
    }

    private func le(_ v: Int) -> [UInt8] { (0 ..< 4).map { UInt8((v >> (8 * $0)) & 0xFF) } }

    /// kimi-run chat: a greedy answer, and each bad input as one line with exit 2.
    @Test func chatAndItsBadInputs() throws {
        let dir = CLI.tempDir()
        let q = dir + "/q.kaf", w = dir + "/w.kaf"
        #expect(try CLI.run("kimi-convert", ["--f32", CLI.fixtures + "/tiny-qwen2", q]).status == 0)
        #expect(
            try CLI.run("kimi-convert", ["--q8", "--components", "whisper", CLI.fixtures + "/tiny-release", w]).status
                == 0)
        let ok = try CLI.run("kimi-run", [q, "chat", "What is the capital of France?", "--max-tokens", "8", "--json"])
        #expect(ok.status == 0, "\(ok.stderr)")
        let j = try JSONValue.parse(ok.stdout, file: "stdout")
        // Greedy ids of transformers' generate() on this fixture (Tests/Fixtures/golden/qwen_tiny_lm_f32).
        #expect(j["ids"]?.arrayValue?.compactMap(\.intValue) == [248, 348, 265, 248, 348, 265, 248, 348])
        for (args, want) in [
            ([w, "chat", "hi"], "no LLM in this file"),
            ([q, "chat", String(repeating: "word ", count: 300), "--context", "64"], "longer than the context"),
            ([q, "chat", "hi", "--threads", "0"], "--threads must be at least 1"),
            ([q, "chat", "hi", "--bogus"], "Unknown option"),
        ] {
            let r = try CLI.run("kimi-run", args)
            #expect(r.status == 2 && r.stderr.contains(want), "\(args.dropFirst()): \(r.status) \(r.stderr)")
        }
        // Invalid UTF-8 as an argument and as a line on stdin (interactive chat).
        for (script, want) in [
            ("\"$BIN/kimi-run\" '\(q)' chat \"$(printf 'caf\\351')\"", "not valid UTF-8"),
            ("printf 'hi\\377\\n' | \"$BIN/kimi-run\" '\(q)' chat --max-tokens 2", "not valid UTF-8"),
        ] {
            let r = try CLI.shell(script)
            #expect(
                r.status == 2 && r.stderr.contains(want) && r.stderr.split(separator: "\n").count == 1,
                "\(script): \(r.status) \(r.stderr)")
        }
        // Ctrl-C while the interactive chat waits for a line: the process ends at once on SIGINT
        // (status 130 or killed by the signal), without a trap.
        let p = Process()
        p.executableURL = URL(fileURLWithPath: CLI.binDir + "/kimi-run")
        p.arguments = [q, "chat"]
        let inp = Pipe(), err = Pipe()
        p.standardInput = inp
        p.standardError = err
        p.standardOutput = Pipe()
        try p.run()
        Thread.sleep(forTimeInterval: 1.0)
        p.interrupt()
        let deadline = Date().addingTimeInterval(10)
        while p.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
        #expect(!p.isRunning, "kimi-run chat did not stop on SIGINT")
        if p.isRunning {
            p.terminate()
        } else {
            let e = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            let byInt = p.terminationReason == .uncaughtSignal && p.terminationStatus == SIGINT
            #expect(
                byInt || p.terminationStatus == 130, "status \(p.terminationStatus) \(p.terminationReason.rawValue)")
            #expect(!e.contains("Fatal error") && !e.contains("Illegal instruction"), "\(e)")
        }
    }

    /// kimi-parity picks its bounds from the file's weight type; q8/q4 pass theirs, a tighter
    /// bound asked for on q4 fails with exit 1.
    @Test func parityBoundsFollowTheWeightType() throws {
        let dir = CLI.tempDir()
        let golden = CLI.fixtures + "/golden/kimi_tiny_lm_f32.safetensors"
        for (q, basis) in [("f32", "f32 weights"), ("q8", "q8_g32_r8 weights"), ("q4", "q4_g32_r8 weights")] {
            let out = dir + "/\(q).kaf"
            #expect(
                try CLI.run(
                    "kimi-convert", ["--\(q)", "--components", "llm,mimo", CLI.fixtures + "/tiny-release", out]
                ).status == 0)
            let r = try CLI.run("kimi-parity", [out, "--golden", golden, "--json"])
            let j = try JSONValue.parse(r.stdout, file: "stdout")
            #expect(r.status == 0 && j["pass"]?.boolValue == true, "\(q): \(r.stdout) \(r.stderr)")
            #expect(j["tolerance"]?["basis"]?.stringValue == basis)
            #expect(j["tolerance"]?["greedy_must_match"]?.boolValue == (q == "f32"))
        }
        let strict = try CLI.run("kimi-parity", [dir + "/q4.kaf", "--golden", golden, "--min-cosine", "0.9999"])
        #expect(strict.status == 1 && strict.stdout.contains("FAIL"), "\(strict.stdout)")
    }

    /// -t/--threads on chat, bench and kimi-parity: 1 works, 0 and more than the machine can run
    /// (min(256, 4 × online CPUs)) are usage errors stated on one line that names --threads.
    @Test func threadLimits() throws {
        let dir = CLI.tempDir()
        let q = dir + "/q.kaf", k = dir + "/k.kaf"
        let golden = CLI.fixtures + "/golden/kimi_tiny_lm_f32.safetensors"
        #expect(try CLI.run("kimi-convert", ["--f32", CLI.fixtures + "/tiny-qwen2", q]).status == 0)
        #expect(
            try CLI.run("kimi-convert", ["--q8", "--components", "llm,mimo", CLI.fixtures + "/tiny-release", k]).status
                == 0)
        for (tool, args) in [
            ("kimi-run", [q, "chat", "hi", "--threads", "1000000"]),
            ("kimi-run", ["chat", q, "hi", "-t", "1000000"]),
            ("kimi-run", [q, "bench", "--threads", "1000000"]),
            ("kimi-parity", [k, "--golden", golden, "--threads", "1000000"]),
        ] {
            let r = try CLI.run(tool, args)
            let lines = r.stderr.split(separator: "\n")
            #expect(r.status == 2, "\(tool) \(args): \(r.status) \(r.stderr)")
            #expect(
                lines.first?.hasPrefix("\(tool): error: --threads 1000000 is more than this machine can run (at most ")
                    == true, "\(tool) \(args): \(r.stderr)")
            // The message is one line; what follows is ArgumentParser's usage.
            #expect(lines.dropFirst().allSatisfy { $0.hasPrefix("Usage:") || $0.hasPrefix("  See ") }, "\(r.stderr)")
            #expect(r.stdout.isEmpty)
        }
        let zero = try CLI.run("kimi-run", [q, "bench", "-t", "0"])
        #expect(
            zero.status == 2 && zero.stderr.hasPrefix("kimi-run: error: --threads must be at least 1"), "\(zero.stderr)"
        )
        // -t 1, model first and subcommand first: the greedy ids of the chat test above.
        for args in [
            [q, "chat", "What is the capital of France?", "-t", "1", "--max-tokens", "2", "--json"],
            ["chat", q, "What is the capital of France?", "--threads", "1", "--max-tokens", "2", "--json"],
        ] {
            let r = try CLI.run("kimi-run", args)
            #expect(r.status == 0, "\(args): \(r.stderr)")
            let j = try JSONValue.parse(r.stdout, file: "stdout")
            #expect(j["ids"]?.arrayValue?.compactMap(\.intValue) == [248, 348], "\(r.stdout)")
        }
        let b = try CLI.run("kimi-run", [q, "bench", "-p", "4", "-n", "2", "-r", "1", "-t", "1", "--json"])
        #expect(b.status == 0, "\(b.stderr)")
        #expect(try JSONValue.parse(b.stdout, file: "stdout")["threads"]?.intValue == 1, "\(b.stdout)")
        let p = try CLI.run("kimi-parity", [k, "--golden", golden, "-t", "1", "--json"])
        #expect(p.status == 0, "\(p.stdout) \(p.stderr)")
        #expect(try JSONValue.parse(p.stdout, file: "stdout")["pass"]?.boolValue == true, "\(p.stdout)")
    }

    @Test func dryRunListsEveryTensor() throws {
        let r = try CLI.run("kimi-convert", ["--dry-run", "--json", "--q4", CLI.fixtures + "/tiny-release", "x.kaf"])
        #expect(r.status == 0)
        let doc = try JSONValue.parse(r.stdout, file: "stdout")
        let tensors = try #require(doc["tensors"]?.arrayValue)
        #expect(tensors.count == 1217)
        for t in tensors {
            #expect(
                t["source"]?.stringValue?.isEmpty == false && t["source_dtype"] != nil
                    && DType(name: t["dtype"]?.stringValue ?? "") != nil)
        }
        #expect((doc["dropped"]?.arrayValue?.count ?? 0) >= 6 + 52 + 3)
    }

    @Test func usageErrorsExit2() throws {
        for (tool, args, want) in [
            ("kimi-run", ["--bogus"], "Unknown option"),
            ("kimi-run", ["/nonexistent.kaf", "info"], "/nonexistent.kaf"),
            ("kimi-convert", [CLI.fixtures + "/tiny-release", "x.kaf"], "choose exactly one"),
            ("kimi-convert", ["--q4", "--group-size", "48", CLI.fixtures + "/tiny-release", "x.kaf"], "--group-size"),
            ("kimi-convert", ["--q4", "/nonexistent-folder", "x.kaf"], "/nonexistent-folder"),
            (
                "kimi-convert", ["--q4", "--keep", "llm.*=q3", CLI.fixtures + "/tiny-release", "x.kaf"],
                "unknown type 'q3'"
            ),
            (
                "kimi-convert", ["--q4", "--keep", "whisper.encoder.*=f16", CLI.fixtures + "/tiny-release", "x.kaf"],
                "--keep 'whisper.encoder.*=f16' matches no tensor"
            ),
        ] {
            let r = try CLI.run(tool, args)
            #expect(r.status == 2, "\(tool) \(args): \(r.status) \(r.stderr)")
            #expect(r.stderr.contains(want), "\(tool) \(args): \(r.stderr)")
        }
        let h = try CLI.run("kimi-convert", ["--help"])
        #expect(h.status == 0 && h.stdout.contains("--keep"))
    }
}
