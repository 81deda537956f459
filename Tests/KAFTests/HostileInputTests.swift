import Foundation
import Testing

@testable import KAF

#if canImport(Glibc)
import Glibc
#endif

/// Item 1: a FIFO where a file is expected hung forever (open waits for a writer). Every input is
/// checked to be a regular file first: one line naming the FIFO, exit 2, at once (`timeout 20`
/// turns a hang into status 124).
@Test func fifoWhereAFileIsExpectedIsAnErrorNotAHang() throws {
    let dir = CLI.tempDir(), k = dir + "/k.kaf", fifo = dir + "/fifo"
    #expect(
        try CLI.run("kimi-convert", ["--q8", "--components", "llm,mimo,whisper,vq", CLI.fixtures + "/tiny-release", k])
            .status == 0)
    #expect(mkfifo(fifo, 0o600) == 0)
    let qwen = dir + "/qwen", release = dir + "/release"
    try FileManager.default.copyItem(atPath: CLI.fixtures + "/tiny-qwen2", toPath: qwen)
    try FileManager.default.removeItem(atPath: qwen + "/model.safetensors")
    #expect(mkfifo(qwen + "/model.safetensors", 0o600) == 0)
    try FileManager.default.copyItem(atPath: CLI.fixtures + "/tiny-release", toPath: release)
    try FileManager.default.removeItem(atPath: release + "/vocoder/model.pt")
    #expect(mkfifo(release + "/vocoder/model.pt", 0o600) == 0)
    let golden = CLI.fixtures + "/golden/kimi_tiny_lm_f32.safetensors"
    for (tool, args, named) in [
        ("kimi-run", [fifo, "info"], fifo),
        ("kimi-run", [fifo, "chat", "hi"], fifo),
        ("kimi-parity", [fifo, "--golden", golden], fifo),
        ("kimi-parity", [k, "--golden", fifo], fifo),
        ("kimi-convert", ["--q8", qwen, dir + "/q.kaf"], qwen + "/model.safetensors"),
        ("kimi-convert", ["--q8", release, dir + "/r.kaf"], release + "/vocoder/model.pt"),
    ] {
        let quoted = args.map { "'\($0)'" }.joined(separator: " ")
        let r = try CLI.shell("exec timeout 20 \"$BIN/\(tool)\" \(quoted) < /dev/null")
        #expect(
            r.status == 2 && r.stderr.hasPrefix("\(tool): error: \(named): is a FIFO, expected a regular file")
                && r.stderr.split(separator: "\n").count == 1,
            "\(tool) \(args): \(r.status) \(r.stderr.prefix(300))")
    }
    // Audio may come through a pipe (`asr <(…)`: read to its end, CLITests.asrAndAskOnAudio); a FIFO
    // nobody writes to reads as empty at once instead of waiting in open().
    let r = try CLI.shell("exec timeout 20 \"$BIN/kimi-run\" '\(k)' asr '\(fifo)' < /dev/null")
    #expect(
        r.status == 2 && r.stderr.hasPrefix("kimi-run: error: \(fifo): no audio: the stream is empty")
            && r.stderr.split(separator: "\n").count == 1, "asr on a FIFO without a writer: \(r.status) \(r.stderr)")
    #expect(HostileConvertTests.temps(in: dir).isEmpty)
}
