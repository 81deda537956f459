import KAF

/// One tensor of the output: where its values come from and what it becomes.
public struct PlanItem: Sendable {
    public let name: String
    public let producer: any TensorProducer
    public let target: DType
    public let reason: String

    public var component: String { String(name.prefix { $0 != "." }) }
    public var outputBytes: Int { target.byteCount(shape: producer.shape) ?? 0 }
}

/// A source tensor the converter leaves out, and why (shown by --dry-run).
public struct DroppedTensor: Sendable {
    public let source: String
    public let reason: String
}

/// What one component contributes to the file.
public struct ComponentPlan: Sendable {
    public let name: String
    public var items: [PlanItem] = []
    public var dropped: [DroppedTensor] = []
    /// Config values the runtime needs, stored under `components.<name>` in kaf.meta.
    public var meta: JSONValue = .object([:])
    /// Byte blobs (name, bytes, compress).
    public var blobs: [(name: String, bytes: [UInt8], compress: Bool)] = []
    /// Input files read, for provenance.
    public var files: [String] = []

    public init(name: String) { self.name = name }

    mutating func add(
        _ name: String, _ producer: any TensorProducer, role: PrecisionPolicy.Role, policy: PrecisionPolicy
    ) {
        let (t, why) = policy.choose(name: name, shape: producer.shape, role: role)
        items.append(PlanItem(name: name, producer: producer, target: t, reason: why))
    }

    /// Adds the tensor `spec` of an architecture table from `producer` (the release's `sourceName`),
    /// after checking its shape against the table's.
    mutating func add(_ spec: TensorSpec, _ producer: any TensorProducer, sourceName: String, policy: PrecisionPolicy)
        throws
    {
        try expectShape(producer, spec.shape, name: sourceName, file: producer.file)
        add(spec.name, producer, role: spec.role, policy: policy)
    }

    mutating func drop(_ source: String, _ reason: String) {
        dropped.append(DroppedTensor(source: source, reason: reason))
    }
}

/// The whole conversion, decided before a byte is written (so --dry-run can print it).
public struct ConversionPlan: Sendable {
    public var components: [ComponentPlan]
    public let policy: PrecisionPolicy
    public let sourceKind: String
    public let sourceFolder: String

    public var items: [PlanItem] { components.flatMap(\.items) }
    public var inputBytes: Int { items.reduce(0) { $0 + $1.producer.elementCount * sourceElementSize($1.producer) } }
    public var outputBytes: Int { items.reduce(0) { $0 + $1.outputBytes } }
}

func sourceElementSize(_ p: any TensorProducer) -> Int {
    switch p.sourceDType {
    case "f64": return 8
    case "f32": return 4
    default: return 2
    }
}
