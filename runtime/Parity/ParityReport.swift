import Foundation
import KAF

/// A quantized-vs-reference report (formats/PARITY.md): every check with its value, the band that
/// judges it and the evidence behind the band; per-tensor statistics; per-layer drift; time and
/// memory of both sides. `ParityComparison` measures it; ReportWriter.swift renders it.
public struct ParityReport: Sendable {
    public enum Verdict: String, Sendable, Comparable {
        case pass, drift, fail
        var rank: Int { self == .pass ? 0 : self == .drift ? 1 : 2 }
        public static func < (a: Verdict, b: Verdict) -> Bool { a.rank < b.rank }
    }

    /// How a value is judged: pass up to `pass`, drift up to `drift`, fail beyond (for `.atLeast`
    /// the other way round). `evidence` says where the numbers come from.
    public struct Band: Sendable {
        public enum Direction: String, Sendable {
            case atMost = "at_most"
            case atLeast = "at_least"
        }
        public let direction: Direction
        public let pass: Double
        public let drift: Double
        public let evidence: String

        public init(_ direction: Direction, pass: Double, drift: Double, evidence: String) {
            (self.direction, self.pass, self.drift, self.evidence) = (direction, pass, drift, evidence)
        }

        public func judge(_ v: Double) -> Verdict {
            if v.isNaN { return .fail }
            switch direction {
            case .atMost: return v <= pass ? .pass : v <= drift ? .drift : .fail
            case .atLeast: return v >= pass ? .pass : v >= drift ? .drift : .fail
            }
        }

        /// A limit with the digits it needs (0.9995 stays 0.9995).
        static func limit(_ v: Double) -> String { v.isFinite ? String(format: "%.6g", v) : ParityReport.format(v) }

        /// "≤ 0.005 pass, ≤ 0.02 drift".
        public var text: String {
            let op = direction == .atMost ? "≤" : "≥"
            return "\(op) \(Self.limit(pass)) pass, \(op) \(Self.limit(drift)) drift"
        }
    }

    /// One measured quantity. `band` nil: reported, not judged.
    public struct Check: Sendable {
        /// tensors, text_head, audio_head, layers, audio_in, audio_out, end_to_end, resources.
        public let section: String
        public let name: String
        public let value: Double
        public let unit: String
        public let band: Band?
        /// Where the value comes from, e.g. the worst tensor or layer.
        public let detail: String
        public var verdict: Verdict? { band?.judge(value) }

        public init(
            _ section: String, _ name: String, _ value: Double, unit: String = "", band: Band? = nil,
            detail: String = ""
        ) {
            (self.section, self.name, self.value, self.unit, self.band, self.detail) = (
                section, name, value, unit, band, detail
            )
        }
    }

    /// One tensor of the model against the same tensor of the reference, both decoded to f32.
    public struct TensorStat: Sendable {
        public let name: String
        public let dtype: String
        public let referenceDtype: String
        public let shape: [Int]
        public let bitsPerWeight: Double
        public let rmse: Double
        public let maxAbs: Double
        /// 10·log10(Σref² / Σ(model−ref)²); +∞ when identical.
        public let snrDB: Double
        public let band: Band
        public var verdict: Verdict { band.judge(snrDB) }
    }

    /// The hidden state after one trunk or MIMO layer, model against reference, over all positions
    /// of the text corpus.
    public struct LayerDrift: Sendable {
        /// "llm.layers.3", "mimo.layers.0".
        public let name: String
        public let meanCosine: Double
        public let minCosine: Double
        /// ‖model − ref‖ / ‖ref‖ over all positions.
        public let relativeError: Double
        public let band: Band
        public var verdict: Verdict { band.judge(meanCosine) }
    }

    /// One side of the comparison: what it is, its file, the seconds it computed, the memory seen.
    public struct Side: Sendable {
        /// "reference" or "model".
        public let role: String
        public let path: String
        /// "release folder", "kaf", ... and the LLM's weight type.
        public let kind: String
        public let fileBytes: Int
        public var seconds: Double

        public init(role: String, path: String, kind: String, fileBytes: Int, seconds: Double) {
            (self.role, self.path, self.kind, self.fileBytes, self.seconds) = (role, path, kind, fileBytes, seconds)
        }
    }

    public var reference: Side
    public var model: Side
    /// ISO 8601, UTC.
    public var created: String
    public var checks: [Check] = []
    /// Worst SNR first.
    public var tensors: [TensorStat] = []
    /// In layer order (trunk, then MIMO).
    public var layers: [LayerDrift] = []
    /// Peak resident memory of the whole run (both sides are in one process).
    public var peakRSSBytes: Int = 0
    /// What was skipped and why, inputs used, etc.
    public var notes: [String] = []

    public init(reference: Side, model: Side, created: String) {
        (self.reference, self.model, self.created) = (reference, model, created)
    }

    /// The worst verdict of every judged check, tensor and layer.
    public var verdict: Verdict {
        let all = checks.compactMap(\.verdict) + tensors.map(\.verdict) + layers.map(\.verdict)
        return all.max() ?? .pass
    }

    /// Short numbers for text: 3 significant digits, "∞" for infinities.
    public static func format(_ v: Double) -> String {
        if v.isNaN { return "nan" }
        if v.isInfinite { return v > 0 ? "∞" : "−∞" }
        if v == 0 { return "0" }
        let a = abs(v)
        if a >= 1e-3 && a < 1e5 {
            return String(format: a >= 100 ? "%.1f" : "%.3g", v)
        }
        return String(format: "%.3g", v)
    }
}
