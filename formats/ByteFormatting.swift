import Foundation

/// Human-readable byte counts (GiB = 2^30), as llama.cpp prints them.
public func formatBytes(_ n: Int) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"]
    var v = Double(n), u = 0
    while v >= 1024 && u < units.count - 1 {
        v /= 1024
        u += 1
    }
    return u == 0 ? "\(n) B" : String(format: "%.2f %@", v, units[u])
}

/// Parameter counts with a K/M/B suffix (10^3, 10^6, 10^9), two decimals.
public func formatCount(_ n: Int) -> String {
    if n >= 1_000_000_000 { return String(format: "%.2f B", Double(n) / 1e9) }
    if n >= 1_000_000 { return String(format: "%.2f M", Double(n) / 1e6) }
    if n >= 1_000 { return String(format: "%.2f K", Double(n) / 1e3) }
    return "\(n)"
}
