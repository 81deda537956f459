import Foundation
import KAF
import KimiRuntime

// Coverage-guided fuzzing of every reader that takes a file from a user (docs/RELIABILITY.md). Each
// input goes to one reader; a thrown error is the expected outcome for garbage, a crash, trap, hang
// or runaway allocation is a bug. Built two ways:
// * normally: `kimi-fuzz TARGET FILE...` replays inputs (the regression corpus, a crash to debug);
// * by scripts/fuzz.sh with `-sanitize=fuzzer,address -D KIMI_FUZZING`: libFuzzer drives
//   `LLVMFuzzerTestOneInput`, the reader chosen by the KIMI_FUZZ_TARGET environment variable.

enum FuzzTarget: String, CaseIterable {
    case kaf, safetensors, index, torch, tiktoken, json, yaml, audio
}

/// Inputs that readers take by path are written here first (one file, rewritten per input).
let scratchDir: String = {
    let base = FileManager.default.fileExists(atPath: "/dev/shm") ? "/dev/shm" : NSTemporaryDirectory()
    let d = base + "/kimi-fuzz-\(getpid())"
    try? FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
    return d
}()

func writeScratch(_ data: UnsafeRawBufferPointer, name: String) -> String {
    let path = scratchDir + "/" + name
    let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
    if fd >= 0 {
        if let b = data.baseAddress, data.count > 0 { _ = write(fd, b, data.count) }
        close(fd)
    }
    return path
}

/// Runs one input through `target`'s reader and touches what it returns.
func fuzzOne(_ target: FuzzTarget, _ data: UnsafeRawBufferPointer) {
    do {
        switch target {
        case .kaf:
            let f = try KAFFile(path: writeScratch(data, name: "in.kaf"), verify: true)
            for e in f.entries.prefix(64) { _ = try? f.tensor(e.name) }
            _ = try? f.blob("tokenizer.tiktoken")
            _ = try? TiktokenBPE(kaf: f)
        case .safetensors:
            let f = try SafetensorsFile(path: writeScratch(data, name: "model.safetensors"))
            for t in f.tensors.prefix(64) { _ = try? t.floats() }
        case .index:
            _ = try SafetensorsCheckpoint(path: writeScratch(data, name: "model.safetensors.index.json"))
        case .torch:
            let c = try TorchCheckpoint(path: writeScratch(data, name: "model.pt"))
            _ = try c.stateDict()
        case .tiktoken:
            let r = try TiktokenRanks.parse(data, path: "tiktoken.model")
            _ = r.rankDictionary().count
        case .json:
            _ = try JSONValue.parse(data, file: "in.json").serialized()
            _ = try JSONValue.parse(data, file: "in.json", uniqueKeys: true)
        case .yaml:
            _ = try YAMLDocument.parse(String(decoding: data, as: UTF8.self), file: "config.yaml").serialized()
        case .audio:
            _ = try AudioInput.load(bytes: Array(data), name: "in.wav")
        }
    } catch {}
}

#if KIMI_FUZZING
let selected: FuzzTarget = {
    let name = ProcessInfo.processInfo.environment["KIMI_FUZZ_TARGET"] ?? ""
    guard let t = FuzzTarget(rawValue: name) else {
        fputs("KIMI_FUZZ_TARGET must be one of \(FuzzTarget.allCases.map(\.rawValue).joined(separator: " "))\n", stderr)
        exit(2)
    }
    return t
}()

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzerTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    fuzzOne(selected, UnsafeRawBufferPointer(start: data, count: data == nil ? 0 : size))
    return 0
}

// SwiftPM links an executable's entry point under its own name, so libFuzzer's `main` is not the
// one that runs: this one hands the arguments to libFuzzer's driver.
@_silgen_name("LLVMFuzzerRunDriver")
func runFuzzerDriver(
    _ argc: UnsafeMutablePointer<CInt>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>,
    _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt
) -> CInt

@main struct FuzzMain {
    static func main() {
        _ = selected
        var argc = CommandLine.argc
        var argv = CommandLine.unsafeArgv
        exit(runFuzzerDriver(&argc, &argv, fuzzerTestOneInput))
    }
}
#else
@main struct Replay {
    static func main() {
        let args = CommandLine.arguments.dropFirst()
        guard let name = args.first, let target = FuzzTarget(rawValue: name) else {
            fputs(
                "usage: kimi-fuzz TARGET FILE... (TARGET: \(FuzzTarget.allCases.map(\.rawValue).joined(separator: " ")))\n"
                    + "replays fuzz inputs through one reader; scripts/fuzz.sh builds the libFuzzer version\n", stderr)
            exit(2)
        }
        var n = 0
        for path in args.dropFirst() {
            guard let d = FileManager.default.contents(atPath: path) else { continue }
            d.withUnsafeBytes { fuzzOne(target, $0) }
            n += 1
        }
        try? FileManager.default.removeItem(atPath: scratchDir)
        print("kimi-fuzz \(target.rawValue): \(n) inputs, no crash")
    }
}
#endif
