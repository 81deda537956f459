import Foundation
import Testing

@testable import KAF

/// `kimi-parity REFERENCE MODEL.kaf --out DIR` as a user runs it (formats/PARITY.md).
@Suite(.serialized) struct ParityReportCLITests {
    static let release = CLI.fixtures + "/tiny-release"

    /// An f32 file of the LLM against its own release folder: every tensor identical, KL 0, pass,
    /// exit 0, three files. The same file with one tensor's signs flipped: that tensor and its
    /// layer fail, exit 1.
    @Test func releaseFolderReferenceAndACorruptedTensor() throws {
        let dir = CLI.tempDir(), f32 = dir + "/f32.kaf"
        let c = try CLI.run("kimi-convert", ["--f32", "--components", "llm,mimo", Self.release, f32])
        #expect(c.status == 0, "\(c.stderr)")
        let r = try CLI.run("kimi-parity", [Self.release, f32, "--out", dir + "/self", "--quick", "--json"])
        #expect(r.status == 0, "\(r.stderr)")
        let j = try JSONValue.parse(r.stdout, file: "stdout")
        #expect(j["verdict"]?.stringValue == "pass")
        let tensors = j["tensors"]?.arrayValue ?? []
        #expect(!tensors.isEmpty && tensors.allSatisfy { $0["snr_db"] == .null && $0["max_abs"]?.doubleValue == 0 })
        let kl = j["checks"]?.arrayValue?.first { $0["name"]?.stringValue == "kl_max" }
        #expect(kl?["value"]?.doubleValue == 0)
        for f in ["report.md", "report.json", "report.html"] {
            #expect(FileManager.default.fileExists(atPath: dir + "/self/" + f), "\(f)")
        }
        let scratch = try FileManager.default.contentsOfDirectory(atPath: dir + "/self").filter { $0.hasSuffix(".kaf") }
        #expect(scratch.isEmpty, "the converted reference is removed: \(scratch)")

        // Flip the sign of every value of one f32 tensor in a copy (the directory is not re-checked).
        let bad = dir + "/bad.kaf", name = "llm.layers.1.mlp.down_proj.weight"
        try FileManager.default.copyItem(atPath: f32, toPath: bad)
        let e = try #require(try KAFFile(path: f32).entry(name))
        var bytes = try #require(FileManager.default.contents(atPath: bad))
        for i in stride(from: e.offset + 3, to: e.offset + e.storedSize, by: 4) { bytes[i] ^= 0x80 }
        try bytes.write(to: URL(fileURLWithPath: bad))
        let b = try CLI.run("kimi-parity", [f32, bad, "--out", dir + "/bad", "--quick"])
        #expect(b.status == 1, "\(b.stdout) \(b.stderr)")
        #expect(b.stdout.hasPrefix("parity: FAIL") && b.stdout.contains("FAIL   \(name)"), "\(b.stdout)")
        let bj = try JSONValue.parse(
            String(
                decoding: try #require(FileManager.default.contents(atPath: dir + "/bad/report.json")), as: UTF8.self),
            file: "report.json")
        let failing = (bj["tensors"]?.arrayValue ?? []).filter { $0["verdict"]?.stringValue == "fail" }
        #expect(failing.map { $0["name"]?.stringValue } == [name])
        let firstBad = (bj["layers"]?.arrayValue ?? []).first { $0["verdict"]?.stringValue != "pass" }
        #expect(firstBad?["name"]?.stringValue == "llm.layers.1")
    }

    /// Golden cases with --out: one `golden` check per metric, the same verdict as printed.
    @Test func goldenCasesAsAReport() throws {
        let dir = CLI.tempDir(), f32 = dir + "/f32.kaf"
        #expect(try CLI.run("kimi-convert", ["--f32", "--components", "llm,mimo", Self.release, f32]).status == 0)
        let golden = CLI.fixtures + "/golden/kimi_tiny_lm_f32.safetensors"
        let r = try CLI.run("kimi-parity", [f32, "--golden", golden, "--out", dir + "/g"])
        #expect(r.status == 0 && r.stdout.contains("PASS"), "\(r.stdout) \(r.stderr)")
        let j = try JSONValue.parse(
            String(decoding: try #require(FileManager.default.contents(atPath: dir + "/g/report.json")), as: UTF8.self),
            file: "report.json")
        let checks = j["checks"]?.arrayValue ?? []
        #expect(checks.count >= 3 && checks.allSatisfy { $0["section"]?.stringValue == "golden" })
        #expect(
            checks.contains {
                $0["name"]?.stringValue == "lm kimi_tiny_lm_f32 greedy_text" && $0["verdict"]?.stringValue == "pass"
            })
        // A bound the q4 file cannot hold: printed FAIL, exit 1, and the report says fail.
        let q4 = dir + "/q4.kaf"
        #expect(try CLI.run("kimi-convert", ["--q4", "--components", "llm,mimo", Self.release, q4]).status == 0)
        let f = try CLI.run("kimi-parity", [q4, "--golden", golden, "--min-cosine", "0.9999", "--out", dir + "/q"])
        let fj = try JSONValue.parse(
            String(decoding: try #require(FileManager.default.contents(atPath: dir + "/q/report.json")), as: UTF8.self),
            file: "report.json")
        #expect(f.status == 1 && fj["verdict"]?.stringValue == "fail", "\(f.stdout)")
    }

    /// SIGTERM while the report runs on a release-folder reference: the scratch .kaf it converted
    /// into the output folder is removed by the signal cleanup (exit 143).
    @Test func signalRemovesTheScratchReference() throws {
        let dir = CLI.tempDir(), f32 = dir + "/f32.kaf", out = dir + "/r"
        #expect(try CLI.run("kimi-convert", ["--f32", "--components", "llm,mimo", Self.release, f32]).status == 0)
        let (p, _) = try HostileConvertTests.start(
            [Self.release, f32, "--out", out, "-t", "1"], executable: CLI.binDir + "/kimi-parity")
        let scratch = out + "/.kimi-parity-reference-\(p.processIdentifier).kaf"
        let appeared = HostileConvertTests.waitFor(scratch, while: p)
        if appeared {
            usleep(200_000)  // into the comparison
            kill(p.processIdentifier, SIGTERM)
        }
        p.waitUntilExit()
        #expect(appeared, "the scratch reference never appeared")
        #expect(p.terminationStatus == 143, "status \(p.terminationStatus)")
        let left = ((try? FileManager.default.contentsOfDirectory(atPath: out)) ?? []).filter {
            $0.hasSuffix(".kaf") || $0.contains(".tmp-")
        }
        #expect(left.isEmpty, "left \(left)")
    }

    /// Bad input is one line on stderr and exit 2, before any work (usage errors add the usage lines).
    @Test func badInputIsRefusedBeforeAnyWork() throws {
        let dir = CLI.tempDir(), f32 = dir + "/f32.kaf", qwen = dir + "/qwen.kaf"
        #expect(try CLI.run("kimi-convert", ["--f32", "--components", "llm", Self.release, f32]).status == 0)
        #expect(try CLI.run("kimi-convert", ["--f32", CLI.fixtures + "/tiny-qwen2", qwen]).status == 0)
        let cases: [([String], String)] = [
            ([f32, f32, "--out", "/proc/kimi-parity-report"], "/proc/kimi-parity-report"),
            ([f32, f32, "--out", dir + "/r", "--text", dir + "/missing.txt"], "missing.txt"),
            ([f32, f32, "--out", dir + "/r", "--audio", dir + "/missing.wav"], "missing.wav"),
            ([f32, qwen, "--out", dir + "/r"], "tensor '"),
            ([f32, dir + "/none.kaf", "--out", dir + "/r"], "none.kaf"),
            ([f32, f32], "--out"),
            ([f32], "--golden"),
        ]
        for (args, needle) in cases {
            let r = try CLI.run("kimi-parity", args)
            let lines = r.stderr.split(separator: "\n")
            let usage = args.count <= 2
            #expect(
                r.status == 2 && (usage || lines.count == 1) && lines.first?.contains(needle) == true,
                "\(args): \(r.status) \(r.stderr)")
            #expect(!FileManager.default.fileExists(atPath: dir + "/r/report.json"), "\(args)")
        }
    }
}
