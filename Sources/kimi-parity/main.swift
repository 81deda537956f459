import Foundation
import KAF
import KimiCLI
import KimiRuntime

struct KimiParity: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kimi-parity",
        abstract: "Check a .kaf model against golden cases written by the official PyTorch code.",
        discussion: """
        Each golden case (formats/GOLDEN.md) holds inputs and the official outputs. Stage lm: logits of
        both heads at every prompt position (max |Δ|, max relative error, worst row cosine, top-1
        agreement) and the greedy lock-step sequences id for id; stage text: tokenizer ids.
        Exit status: 0 when every case passes, 1 when one fails, 2 on bad input.
        """)

    @Argument(help: "The .kaf model file.") var model: String
    @Option(name: .long, help: "A golden case (.safetensors); repeat for several.") var golden: [String] = []
    @Option(help: "Largest allowed |Δ| of a logit.") var maxAbs: Double = 1e-3
    @Option(help: "Smallest allowed cosine of a logits row.") var minCosine: Double = 0.99999
    @Option(help: "Smallest allowed top-1 agreement (fraction of rows).") var minTop1: Double = 1.0
    @Flag(help: "Report greedy sequence mismatches without failing.") var allowGreedyMismatch = false
    @Flag(help: "Print one JSON object.") var json = false

    func validate() throws {
        if golden.isEmpty { throw ValidationError("give at least one --golden CASE.safetensors") }
    }

    func run() throws {
        let kaf = try KAFFile(path: model)
        var tol = Parity.Tolerance()
        tol.maxAbs = maxAbs; tol.minCosine = minCosine; tol.minTop1 = minTop1; tol.greedyMustMatch = !allowGreedyMismatch
        var results: [Parity.CaseResult] = []
        for g in golden { results.append(try Parity.run(kaf, golden: g, tolerance: tol)) }
        if json {
            let cases: [JSONValue] = results.map { r in
                ["golden": .string(r.path), "stage": .string(r.stage), "pass": .bool(r.pass), "metrics": .array(r.metrics.map(\.json))]
            }
            print(JSONValue.object(["model": .string(model), "pass": .bool(results.allSatisfy(\.pass)), "cases": .array(cases)]).serialized())
        } else {
            for r in results {
                print("\(r.pass ? "PASS" : "FAIL")  \(r.path)  (stage \(r.stage))")
                for m in r.metrics {
                    if let s = m.sequenceMatch {
                        print("  \(m.pass ? "ok  " : "FAIL") \(m.name): \(s ? "identical" : "differs after \(m.matchedPrefix) of \(m.expectedLength)")")
                    } else {
                        print(String(format: "  %@ %@: max|Δ| %.3g  max rel %.3g  min cosine %.7f  top-1 %.3f  (%d rows)",
                                     (m.pass ? "ok  " : "FAIL") as NSString, m.name as NSString, m.maxAbs, m.maxRel, m.minCosine, m.top1, m.rows))
                    }
                }
            }
        }
        if !results.allSatisfy(\.pass) { throw ExitCode(1) }
    }
}

runCommand(KimiParity.self)
