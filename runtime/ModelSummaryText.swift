import Foundation
import KAF

extension ModelSummary {
    /// The text of `kimi-run FILE info`: header, one row per component, blobs, the tasks the file
    /// can run and, with `listTensors`, every tensor. Lines are separated by "\n", without a final
    /// newline. `verified`: the file was opened with checksum verification.
    public func textReport(listTensors: Bool, verified: Bool) -> String {
        var lines: [String] = []
        func col(_ s: String, _ w: Int, left: Bool = false) -> String {
            let pad = String(repeating: " ", count: max(0, w - s.count))
            return left ? s + pad : pad + s
        }
        let conv = meta["converter"].map {
            ", written by \($0["name"]?.stringValue ?? "?") \($0["version"]?.stringValue ?? "")"
        }
        lines.append("file:       \(path) (\(formatBytes(fileSize)))")
        lines.append("format:     kaf v\(meta["version"]?.intValue ?? 0)\(conv ?? "")")
        if let q = meta["quantization"], let d = q["default"]?.stringValue { lines.append("quantized:  \(d)") }
        if verified { lines.append("checksums:  all \(entries.count) entries verified") }
        lines.append("")
        lines.append(
            col("component", 10, left: true) + col("tensors", 9) + col("parameters", 13) + col("bytes", 13)
                + col("bpw", 8) + col("min SNR", 10) + "  types")
        for c in components where c.parameters > 0 {
            let types = c.dtypes.sorted { $0.value > $1.value }.map { $0.key }.joined(separator: ",")
            lines.append(
                col(c.name, 10, left: true) + col("\(c.tensors)", 9) + col(formatCount(c.parameters), 13)
                    + col(formatBytes(c.bytes), 13) + col(String(format: "%.2f", c.bitsPerWeight), 8)
                    + col(c.worstSNR.map { String(format: "%.1f dB", $0.db) } ?? "exact", 10) + "  " + types)
        }
        let blobs = entries.filter { $0.dtype == .u8 }
        lines.append(
            "blobs: "
                + blobs.map { "\($0.name) (\(formatBytes($0.storedSize))\($0.compression == .zstd ? ", zstd" : ""))" }
                .joined(separator: ", "))
        lines.append("")
        lines.append("components present for:")
        for cap in capabilities {
            let needs = cap.available ? "" : "  (needs \(cap.needs.joined(separator: ", ")))"
            lines.append("\(cap.available ? "yes" : "no ")  \(cap.task)\(needs)")
        }
        if listTensors {
            lines.append("")
            for e in entries {
                lines.append(
                    col(e.name, 56, left: true) + " " + col(e.dtype.name, 8, left: true) + " "
                        + col("\(e.shape)", 22, left: true) + " " + formatBytes(e.storedSize))
            }
        }
        return lines.joined(separator: "\n")
    }
}
