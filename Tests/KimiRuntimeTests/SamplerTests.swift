import Foundation
import Testing

@testable import KimiRuntime

/// The sampler against the formulas of the official one (docs/ARCHITECTURE.md §3.5): greedy is the
/// first maximum; top-k draws only among the k largest, with frequencies softmax(logits / T) over them;
/// the repetition penalty divides positive and multiplies negative logits of the last `window` ids.
@Suite struct SamplerTests {
    @Test func greedyIsTheFirstMaximum() {
        var s = Sampler(temperature: 0)
        var l: [Float] = [0.5, 2, -1, 2, 1]
        #expect(s.sample(&l, count: l.count, history: []) == 1)
    }

    /// 40,000 draws at T = 0.7, k = 3 over 6 logits: every draw is one of the 3 largest, and each one's
    /// frequency is within 0.01 of exp(l/T) / Σ over those 3 (σ of a frequency ≈ 0.0025 here).
    @Test func topKFrequenciesFollowTheSoftmax() {
        let logits: [Float] = [0.1, 1.5, -0.3, 1.2, 0.9, -2]
        let (T, k, draws) = (Float(0.7), 3, 40_000)
        var s = Sampler(temperature: T, topK: k, seed: 7)
        var counts = [Int](repeating: 0, count: logits.count)
        for _ in 0 ..< draws {
            var l = logits
            counts[s.sample(&l, count: l.count, history: [])] += 1
        }
        let top = [1, 3, 4]
        #expect(counts.enumerated().allSatisfy { top.contains($0.offset) || $0.element == 0 }, "\(counts)")
        let w = top.map { exp(Double(logits[$0] / T)) }
        let z = w.reduce(0, +)
        for (i, id) in top.enumerated() {
            let f = Double(counts[id]) / Double(draws)
            #expect(abs(f - w[i] / z) < 0.01, "id \(id): \(f) vs \(w[i] / z)")
        }
    }

    /// top_k ≤ 0 samples from the whole vocabulary; the same seed gives the same draws.
    @Test func allCandidatesAndSeeds() {
        let logits: [Float] = (0 ..< 50).map { Float($0 % 7) * 0.3 }
        var a = Sampler(temperature: 1, topK: 0, seed: 3), b = Sampler(temperature: 1, topK: 0, seed: 3)
        var seen = Set<Int>()
        for _ in 0 ..< 2000 {
            var l1 = logits, l2 = logits
            let x = a.sample(&l1, count: 50, history: []), y = b.sample(&l2, count: 50, history: [])
            #expect(x == y)
            seen.insert(x)
        }
        #expect(seen.count > 40, "\(seen.count) distinct ids of 50")
    }

    /// The penalty applies to the last `window` ids only, once the history is longer than the window.
    @Test func repetitionPenalty() {
        var s = Sampler(temperature: 0, penalty: 2, window: 2)
        var l: [Float] = [3, -1, 2.5, 1]
        // history [0, 0, 1, 2]: the window is [1, 2] → l[1] −1 → −2, l[2] 2.5 → 1.25; argmax stays 0.
        #expect(s.sample(&l, count: 4, history: [0, 0, 1, 2]) == 0)
        #expect(l == [3, -2, 1.25, 1])
        var short: [Float] = [3, -1, 2.5, 1]
        _ = s.sample(&short, count: 4, history: [1, 2])  // not longer than the window: unchanged
        #expect(short == [3, -1, 2.5, 1])
    }
}
