import Foundation
import Testing

@testable import KAF

#if canImport(Glibc)
import Glibc
#endif

/// A copy of `source` whose kaf.meta is `edit`ed: every checksum valid, so only the values are hostile.
func rewriteMeta(_ source: String, to path: String, _ edit: (inout JSONValue) -> Void) throws {
    let f = try KAFFile(path: source)
    var meta = f.meta
    edit(&meta)
    let w = try KAFWriter(path: path, overwrite: true)
    for e in f.entries where e.name != KAF.metaBlobName {
        if e.compression == .zstd {
            try w.addBlob(name: e.name, bytes: try f.blob(e.name), compress: true)
        } else {
            try w.addTensor(name: e.name, dtype: e.dtype, shape: e.shape, bytes: try f.tensor(e.name).bytes)
        }
    }
    try w.addMeta(meta)
    try w.finish()
}

extension JSONValue {
    /// Sets the value at `path` (objects only), creating nothing that is missing.
    mutating func set(_ path: [String], _ value: JSONValue) {
        guard let key = path.first, case .object(var o) = self else { return }
        if path.count == 1 {
            o[key] = value
        } else if var child = o[key] {
            child.set(Array(path.dropFirst()), value)
            o[key] = child
        }
        self = .object(o)
    }
}

/// Item 5: a .kaf whose kaf.meta is hostile but whose checksums are valid crashed kimi-run
/// (SIGSEGV, abort on an impossible allocation). Each value is an error naming the file, exit 2.
@Suite(.serialized) struct HostileMetaTests {
    static let llmConfig = ["components", "llm", "config"]
    static let cases: [(String, JSONValue, String)] = [
        ("max_position_embeddings", .int(1 << 62), "max_position_embeddings"),
        ("max_position_embeddings", .int(-8), "max_position_embeddings"),
        ("max_position_embeddings", .int(1_000_000_000_000), "max_position_embeddings"),
        ("kimia_mimo_layers", .int(-1), "kimia_mimo_layers"),
        ("kimia_mimo_layers", .int(1), "past the 1 MIMO layers"),
        ("kimia_mimo_layers", .int(5), "mimo.layers.2"),
        ("num_hidden_layers", .int(3), "past the 3 layers"),
        ("num_hidden_layers", .int(0), "num_hidden_layers"),
        ("kimia_mimo_transformer_from_layer_index", .int(-5), "kimia_mimo_transformer_from_layer_index"),
        ("kimia_mimo_transformer_from_layer_index", .int(99), "kimia_mimo_transformer_from_layer_index"),
        ("rope_theta", .int(-1), "rope_theta"),
        ("rms_norm_eps", .int(0), "rms_norm_eps"),
        ("num_attention_heads", .int(1 << 30), "num_attention_heads"),
    ]

    @Test func hostileLLMConfigInKAFMetaIsAnError() throws {
        let dir = CLI.tempDir(), good = dir + "/good.kaf"
        let c = try CLI.run("kimi-convert", ["--q8", "--components", "llm,mimo", CLI.fixtures + "/tiny-release", good])
        #expect(c.status == 0, "\(c.stderr)")
        for (i, (key, value, want)) in Self.cases.enumerated() {
            let bad = dir + "/bad\(i).kaf"
            try rewriteMeta(good, to: bad) { $0.set(Self.llmConfig + [key], value) }
            for args in [[bad, "bench", "-p", "4", "-n", "2", "-r", "1"], [bad, "chat", "hi", "--max-tokens", "2"]] {
                let r = try CLI.run("kimi-run", args)
                #expect(
                    r.status == 2 && r.stderr.hasPrefix("kimi-run: error: \(bad):") && r.stderr.contains(want)
                        && r.stderr.split(separator: "\n").count == 1,
                    "\(key) = \(value.serialized()), \(args[1]): \(r.status) \(r.stderr.prefix(400))")
            }
        }
        // In range for a config (2^22), but a KV cache that size does not fit the address space
        // allowed (ulimit -v 1 GiB; it needs 6 GiB): an error naming --context, where it aborted in
        // malloc. bench sizes its context from -p/-n and runs.
        let big = dir + "/big.kaf"
        try rewriteMeta(good, to: big) { $0.set(Self.llmConfig + ["max_position_embeddings"], .int(1 << 22)) }
        let limited = try CLI.shell("ulimit -v 1048576; exec \"$BIN/kimi-run\" '\(big)' chat hi --max-tokens 2 -t 1")
        #expect(
            limited.status == 2 && limited.stderr.hasPrefix("kimi-run: error: \(big): a context of 4194304 positions")
                && limited.stderr.contains("--context") && limited.stderr.split(separator: "\n").count == 1,
            "\(limited.status) \(limited.stderr.prefix(400))")
        let bench = try CLI.shell("ulimit -v 1048576; exec \"$BIN/kimi-run\" '\(big)' bench -p 4 -n 2 -r 1 -t 1")
        #expect(bench.status == 0, "\(bench.stderr.prefix(400))")
    }
}
