import Foundation
import KAF

#if canImport(Glibc)
import Glibc
#endif

/// The .kaf file every kimi-run subcommand and kimi-parity take as their first argument.
public struct ModelArgument: ParsableArguments {
    @Argument(help: "The .kaf model file.") public var model: String

    public init() {}

    /// The path as given.
    public var path: String { model }

    /// Opens and validates the file (every checksum too with `verify`).
    public func open(verify: Bool = false) throws -> KAFFile { try KAFFile(path: model, verify: verify) }
}

/// `-t/--threads N`: at least 1, and no more than a machine can sensibly run (see `maximum`), so a
/// typo such as `--threads 1000000` is a usage error instead of a process that starts threads
/// until the system refuses.
public struct ThreadOptions: ParsableArguments {
    @Option(name: [.customShort("t"), .long], help: "Threads (default: all cores).") public var threads: Int?

    public init() {}

    /// The most threads accepted: 4 × online CPUs, never above 256.
    public static let cap = 256
    public static var onlineCPUs: Int { max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))) }
    public static var maximum: Int { min(cap, 4 * onlineCPUs) }

    /// What the runtime takes (`KimiLLM(threads:)`): the count asked for, 0 = all cores.
    public var count: Int { threads ?? 0 }

    public func validate() throws {
        guard let t = threads else { return }
        if t < 1 { throw ValidationError("--threads must be at least 1") }
        let cpus = Self.onlineCPUs
        let most = Self.maximum
        if t > most {
            throw ValidationError(
                "--threads \(t) is more than this machine can run (at most \(most) here: 4 × \(cpus) online CPUs, "
                    + "and never above \(Self.cap))")
        }
    }
}

/// `--context N`: the context length in tokens (default: the model's), at least 8.
public struct ContextOptions: ParsableArguments {
    @Option(help: "Context length (default: the model's).") public var context: Int?

    public init() {}

    public func validate() throws {
        if let c = context, c < 8 { throw ValidationError("--context must be at least 8") }
    }
}
