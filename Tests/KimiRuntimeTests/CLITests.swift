import Testing
import Foundation
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
        for c in [".build/debug", ".build/x86_64-unknown-linux-gnu/debug"] where FileManager.default.fileExists(atPath: "\(packageRoot)/\(c)/kimi-run") {
            return "\(packageRoot)/\(c)"
        }
        return packageRoot + "/.build/debug"
    }()

    struct Result { let status: Int32; let stdout: String; let stderr: String }

    static func run(_ tool: String, _ args: [String]) throws -> Result {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: binDir + "/" + tool)
        p.arguments = args
        let out = Pipe(), err = Pipe()
        p.standardOutput = out; p.standardError = err
        try p.run()
        let o = out.fileHandleForReading.readDataToEndOfFile(), e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return Result(status: p.terminationStatus, stdout: String(decoding: o, as: UTF8.self), stderr: String(decoding: e, as: UTF8.self))
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
        for comp in ["llm", "mimo", "whisper", "vq", "dit", "vocoder"] { #expect(i.stdout.contains("\n\(comp) "), "\(comp) listed") }
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
        let dry = try CLI.run("kimi-convert", ["--dry-run", "--q8", CLI.fixtures + "/tiny-release", dir + "/never.kaf"])
        #expect(dry.status == 0 && dry.stdout.contains("llm.layers.0.mlp.up_proj.weight") && dry.stdout.contains("q8_g32"))
        #expect(!FileManager.default.fileExists(atPath: dir + "/never.kaf"))
    }

    /// Each malformed .kaf of the reader's table, through the CLI: exit 2, one line naming the file.
    @Test(arguments: malformedKAFCasesForCLI)
    func infoOnMalformedFiles(_ c: (String, [UInt8])) throws {
        let path = CLI.tempDir() + "/bad.kaf"
        FileManager.default.createFile(atPath: path, contents: Data(c.1))
        let r = try CLI.run("kimi-run", [path, "info", "--verify"])
        #expect(r.status == 2, "\(c.0): status \(r.status)")
        #expect(r.stderr.hasPrefix("kimi-run: error: \(path):"), "\(c.0): \(r.stderr)")
        #expect(r.stderr.split(separator: "\n").count == 1, "\(c.0): \(r.stderr)")
    }

    @Test func usageErrorsExit2() throws {
        for (tool, args, want) in [
            ("kimi-run", ["--bogus"], "Unknown option"),
            ("kimi-run", ["/nonexistent.kaf", "info"], "/nonexistent.kaf"),
            ("kimi-convert", [CLI.fixtures + "/tiny-release", "x.kaf"], "choose exactly one"),
            ("kimi-convert", ["--q4", "--group-size", "48", CLI.fixtures + "/tiny-release", "x.kaf"], "--group-size"),
            ("kimi-convert", ["--q4", "/nonexistent-folder", "x.kaf"], "/nonexistent-folder"),
            ("kimi-convert", ["--q4", "--keep", "llm.*=q3", CLI.fixtures + "/tiny-release", "x.kaf"], "unknown type 'q3'"),
        ] {
            let r = try CLI.run(tool, args)
            #expect(r.status == 2, "\(tool) \(args): \(r.status) \(r.stderr)")
            #expect(r.stderr.contains(want), "\(tool) \(args): \(r.stderr)")
        }
        let h = try CLI.run("kimi-convert", ["--help"])
        #expect(h.status == 0 && h.stdout.contains("--keep"))
    }
}

/// A few malformed files (the full table runs at library level in KAFMalformedTests).
let malformedKAFCasesForCLI: [(String, [UInt8])] = [
    ("empty", []),
    ("text", Array("hello, not a model\n".utf8)),
    ("zeros", [UInt8](repeating: 0, count: 4096)),
    ("bad magic", [0x47, 0x47, 0x55, 0x46] + [UInt8](repeating: 0, count: 200)),
]
