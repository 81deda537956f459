#if canImport(Glibc)
import Glibc
#endif

/// The official sampler (docs/ARCHITECTURE.md §3.5): optional repetition penalty over a window of the history,
/// log-softmax, then greedy (temperature ≤ 1e-6) or top-k sampling at a temperature.
public struct Sampler {
    public var temperature: Float
    public var topK: Int
    public var penalty: Float
    public var window: Int
    private var rng: SplitMix64

    public init(temperature: Float = 0, topK: Int = 5, penalty: Float = 1, window: Int = 16, seed: UInt64 = 0) {
        self.temperature = temperature
        self.topK = topK
        self.penalty = penalty
        self.window = window
        rng = SplitMix64(seed: seed)
    }

    /// Picks an id from `logits[0..<n]`; `history` is the stream's previous ids. Modifies `logits`
    /// only when the penalty applies.
    public mutating func sample(_ logits: UnsafeMutablePointer<Float>, count n: Int, history: [Int]) -> Int {
        if penalty > 1, history.count > window {
            for id in history.suffix(window) where id >= 0 && id < n {
                logits[id] = logits[id] < 0 ? logits[id] * penalty : logits[id] / penalty
            }
        }
        if temperature <= 1e-6 { return argmax(logits, count: n) }  // first on ties, as torch.argmax
        // softmax(logits / T) restricted to the top k (top_k ≤ 0: all), drawn once.
        let k = topK > 0 ? min(topK, n) : n
        var top: [(Int, Float)] = []
        if k == n {
            top = (0 ..< n).map { ($0, logits[$0]) }
        } else {
            top.reserveCapacity(k + 1)
            for i in 0 ..< n {
                if top.count < k || logits[i] > top[top.count - 1].1 {
                    var j = top.count
                    top.append((i, logits[i]))
                    while j > 0 && top[j - 1].1 < top[j].1 {
                        top.swapAt(j - 1, j)
                        j -= 1
                    }
                    if top.count > k { top.removeLast() }
                }
            }
        }
        let mx = top.map(\.1).max() ?? 0
        let w = top.map { exp(Double(($0.1 - mx) / temperature)) }
        var u = rng.nextDouble() * w.reduce(0, +)
        for (i, p) in w.enumerated() {
            u -= p
            if u <= 0 { return top[i].0 }
        }
        return top[top.count - 1].0
    }
}

/// Small, seedable, reproducible across platforms.
public struct SplitMix64: RandomNumberGenerator {
    private var state: UInt64
    public init(seed: UInt64) { state = seed }
    public mutating func next() -> UInt64 {
        state &+= 0x9E3779B97F4A7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58476D1CE4E5B9
        z = (z ^ (z >> 27)) &* 0x94D049BB133111EB
        return z ^ (z >> 31)
    }
    public mutating func nextDouble() -> Double { Double(next() >> 11) / Double(1 << 53) }
}
