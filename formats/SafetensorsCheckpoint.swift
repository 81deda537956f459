import Foundation

/// A safetensors checkpoint: a folder holding `model.safetensors.index.json` (a `weight_map`
/// from tensor name to shard file) or a single `model.safetensors`; or the index or a single
/// file given directly. Shard names are taken from the index as they are — the Kimi release
/// has `model-1-of-35.safetensors` … `model-36-of-36.safetensors`, so nothing assumes HF's
/// `model-00001-of-00035` pattern.
///
/// Consistency is checked both ways: every tensor the index names must be in that shard, and
/// every tensor in a referenced shard must be in the index (an error, not a warning: a tensor
/// the index does not know is a sign of a mixed-up download). No name may occur in two shards.
public final class SafetensorsCheckpoint: @unchecked Sendable {
    public static let indexName = "model.safetensors.index.json"
    public static let singleName = "model.safetensors"

    /// The path as given (folder, index or file).
    public let path: String
    /// The folder holding the shards.
    public let folder: String
    /// The index, when the checkpoint is sharded.
    public let indexPath: String?
    /// The index's `metadata` object (e.g. `total_size`), when present.
    public let indexMetadata: JSONValue?
    /// Shards in natural order of file name ("model-2-of-35" before "model-10-of-35").
    public let files: [SafetensorsFile]
    /// Every tensor: shards in `files` order, then data-offset order inside each shard.
    public let tensors: [SafetensorsTensor]
    private let byName: [String: Int]

    public init(path: String) throws {
        self.path = path
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else {
            throw FormatError(path, "no such file or folder")
        }
        let index: String?
        if isDir.boolValue {
            folder = path
            let candidate = Self.join(path, Self.indexName)
            if FileManager.default.fileExists(atPath: candidate) {
                index = candidate
            } else if FileManager.default.fileExists(atPath: Self.join(path, Self.singleName)) {
                index = nil
            } else {
                throw FormatError(path, "neither \(Self.indexName) nor \(Self.singleName) in \(path)")
            }
        } else {
            folder = (path as NSString).deletingLastPathComponent.isEmpty ? "." : (path as NSString).deletingLastPathComponent
            index = path.hasSuffix(".json") ? path : nil
        }
        indexPath = index

        var weightMap: [String: String]?
        if let index {
            let (map, meta) = try Self.readIndex(index)
            weightMap = map
            indexMetadata = meta
            files = try Self.openShards(map, folder: folder, index: index)
        } else {
            indexMetadata = nil
            files = [try SafetensorsFile(path: isDir.boolValue ? Self.join(path, Self.singleName) : path)]
        }

        var all: [SafetensorsTensor] = []
        var where_: [String: Int] = [:]
        for file in files {
            for t in file.tensors {
                if let other = where_[t.name] {
                    throw FormatError(file.path, "tensor '\(t.name)' is also in \(all[other].path)")
                }
                where_[t.name] = all.count
                all.append(t)
            }
        }
        tensors = all
        byName = where_
        if let index, let weightMap {
            try Self.checkAgainstIndex(index, weightMap, tensors: all, byName: where_)
        }
    }

    public var names: [String] { tensors.map(\.name) }
    /// Sum of every tensor's byte size over all shards.
    public var totalBytes: Int { tensors.reduce(0) { $0 + $1.byteCount } }

    public subscript(name: String) -> SafetensorsTensor? {
        byName[name].map { tensors[$0] }
    }

    public func contains(_ name: String) -> Bool { byName[name] != nil }

    public func tensor(named name: String) throws -> SafetensorsTensor {
        guard let t = self[name] else { throw FormatError(folder, "no tensor \(name) in \(folder)") }
        return t
    }

    // MARK: index

    /// The weight map (name → shard) after checking each shard is a plain file name.
    private static func readIndex(_ index: String) throws -> ([String: String], JSONValue?) {
        let json = try JSONValue.parse(contentsOf: index)
        guard case .object(let top) = json else { throw FormatError(index, "index is not a JSON object") }
        guard let wm = top["weight_map"] else { throw FormatError(index, "index has no weight_map") }
        guard case .object(let entries) = wm else { throw FormatError(index, "weight_map is not a JSON object") }
        guard !entries.isEmpty else { throw FormatError(index, "weight_map is empty") }
        var map: [String: String] = [:]
        for (name, v) in entries {
            guard case .string(let shard) = v else {
                throw FormatError(index, "weight_map['\(name)'] is \(v.serialized()), not a shard file name")
            }
            guard isPlainFileName(shard) else {
                throw FormatError(index, "weight_map['\(name)'] = '\(shard)' is not a plain file name in the checkpoint folder")
            }
            map[name] = shard
        }
        return (map, top["metadata"])
    }

    /// A shard must sit in the checkpoint folder: no separators, no `.`/`..`, no NUL.
    static func isPlainFileName(_ s: String) -> Bool {
        !s.isEmpty && s != "." && s != ".." && !s.contains("/") && !s.contains("\\") && !s.contains("\0")
    }

    private static func openShards(_ map: [String: String], folder: String, index: String) throws -> [SafetensorsFile] {
        // One example tensor per shard, for the error when the shard is missing.
        var example: [String: String] = [:]
        for (name, shard) in map where example[shard].map({ name < $0 }) ?? true { example[shard] = name }
        var files: [SafetensorsFile] = []
        for shard in example.keys.sorted(by: naturalLess) {
            let p = join(folder, shard)
            guard FileManager.default.fileExists(atPath: p) else {
                throw FormatError(index, "shard \(shard) (holding tensor '\(example[shard] ?? "")') does not exist in \(folder)")
            }
            files.append(try SafetensorsFile(path: p))
        }
        return files
    }

    private static func checkAgainstIndex(_ index: String, _ map: [String: String],
                                          tensors: [SafetensorsTensor], byName: [String: Int]) throws {
        for name in map.keys.sorted() {
            let shard = map[name] ?? ""
            guard let i = byName[name] else {
                throw FormatError(index, "tensor '\(name)' is not in shard \(shard), where the index says it is")
            }
            let actual = (tensors[i].path as NSString).lastPathComponent
            guard actual == shard else {
                throw FormatError(index, "tensor '\(name)' is in shard \(actual), but the index says \(shard)")
            }
        }
        for t in tensors where map[t.name] == nil {
            throw FormatError(t.path, "tensor '\(t.name)' is in this shard but not in the index \(index)")
        }
    }

    private static func join(_ folder: String, _ name: String) -> String {
        folder.hasSuffix("/") ? folder + name : folder + "/" + name
    }
}

/// Numeric-aware order: digit runs compare by value, so "model-2-of-35" < "model-10-of-35".
/// Digit runs are compared as strings (length after leading zeros, then text): no overflow.
func naturalLess(_ a: String, _ b: String) -> Bool {
    func runs(_ s: String) -> [(digits: Bool, text: Substring)] {
        var out: [(Bool, Substring)] = []
        var i = s.startIndex
        while i < s.endIndex {
            let d = s[i].isASCII && s[i].isNumber
            var j = i
            while j < s.endIndex, (s[j].isASCII && s[j].isNumber) == d { j = s.index(after: j) }
            out.append((d, s[i ..< j]))
            i = j
        }
        return out
    }
    let ra = runs(a), rb = runs(b)
    for (x, y) in zip(ra, rb) {
        if x.digits && y.digits {
            let xs = x.text.drop { $0 == "0" }, ys = y.text.drop { $0 == "0" }
            if xs.count != ys.count { return xs.count < ys.count }
            if xs != ys { return xs < ys }
        } else if x.text != y.text {
            return x.text < y.text
        }
    }
    if ra.count != rb.count { return ra.count < rb.count }
    return a < b
}
