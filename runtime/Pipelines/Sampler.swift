#if canImport(Glibc)
import Glibc
#endif

/// The official sampler (docs/ARCHITECTURE.md §3.5): optional repetition penalty over a window of the history,
/// log-softmax, then greedy (temperature ≤ 1e-6) or top-k sampling at a temperature. Its candidate buffers grow
/// to the largest k (or vocabulary, for top_k ≤ 0) once and are reused: a token allocates nothing.
public struct Sampler {
    public var temperature: Float
    public var topK: Int
    public var penalty: Float
    public var window: Int
    private var rng: SplitMix64
    private let scratch = Candidates()

    /// The top-k candidates (ids, logits, weights), kept across calls.
    final class Candidates {
        var ids = UnsafeMutablePointer<Int>.allocate(capacity: 1)
        var logits = UnsafeMutablePointer<Float>.allocate(capacity: 1)
        var weights = UnsafeMutablePointer<Double>.allocate(capacity: 1)
        var capacity = 1

        func reserve(_ n: Int) {
            guard n > capacity else { return }
            ids.deallocate()
            logits.deallocate()
            weights.deallocate()
            (ids, logits, weights) = (.allocate(capacity: n), .allocate(capacity: n), .allocate(capacity: n))
            capacity = n
        }

        deinit {
            ids.deallocate()
            logits.deallocate()
            weights.deallocate()
        }
    }

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
            for id in history[(history.count - window)...] where id >= 0 && id < n {
                logits[id] = logits[id] < 0 ? logits[id] * penalty : logits[id] / penalty
            }
        }
        if temperature <= 1e-6 || n <= 1 { return argmax(logits, count: n) }  // first on ties, as torch.argmax
        // softmax(logits / T) restricted to the top k (top_k ≤ 0: all), drawn once. The candidates are
        // kept in descending order (insertion; the first of equal logits first).
        let k = topK > 0 ? min(topK, n) : n
        scratch.reserve(k + 1)
        let ids = scratch.ids, top = scratch.logits, w = scratch.weights
        var count = 0
        if k == n {
            for i in 0 ..< n { (ids[i], top[i]) = (i, logits[i]) }
            count = n
        } else {
            for i in 0 ..< n where count < k || logits[i] > top[count - 1] {
                var j = count
                (ids[j], top[j]) = (i, logits[i])
                count += 1
                while j > 0 && top[j - 1] < top[j] {
                    (ids[j - 1], ids[j]) = (ids[j], ids[j - 1])
                    (top[j - 1], top[j]) = (top[j], top[j - 1])
                    j -= 1
                }
                if count > k { count = k }
            }
        }
        var mx = -Float.infinity
        for i in 0 ..< count { mx = max(mx, top[i]) }
        var total = 0.0
        for i in 0 ..< count {
            w[i] = exp(Double((top[i] - mx) / temperature))
            total += w[i]
        }
        var u = rng.nextDouble() * total
        for i in 0 ..< count {
            u -= w[i]
            if u <= 0 { return ids[i] }
        }
        return ids[count - 1]
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
