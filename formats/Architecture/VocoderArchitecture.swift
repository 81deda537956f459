// The BigVGAN vocoder (docs/ARCHITECTURE.md §1.10, §5.6): `vocoder/config.json` and the generator's tensors in the form the
// .kaf stores them (weight norm folded: one `.weight` per convolution).
//
// Structure as built by NVIDIA/BigVGAN bigvgan.py (`BigVGAN.__init__`, `AMPBlock1`, `AMPBlock2`),
// of which Kimi-Audio's kimia_infer/models/detokenizer/vocoder/bigvgan.py is a copy:
// conv_pre = Conv1d(num_mels → C, 7); ups[i] = [ConvTranspose1d(C/2^i → C/2^(i+1), k_i, u_i)];
// for each stage i and each (k_j, d_j): resblock(C/2^(i+1), k_j, d_j); activation_post; conv_post =
// Conv1d(C/2^n → 1, 7, bias=use_bias_at_final). Every conv is weight-normed (weight_g, weight_v).
// AMPBlock1: convs1 (one per dilation), convs2 (as many, dilation 1), activations (2 per dilation,
// A1/A2 alternating); AMPBlock2: convs (one per dilation), activations (one per conv). Each
// activation is an alias-free Activation1d (alias_free_activation/torch/act.py): `act` (Snake:
// alpha; SnakeBeta: alpha, beta, per channel), `upsample.filter` and `downsample.lowpass.filter`
// ([1, 1, 12]: up/down ratio 2, kernel 12 = int(6·ratio//2)·2, resample.py). Older BigVGAN code
// spells AMPBlock1 with exactly 3 dilations and AMPBlock2 with 2; one conv per listed dilation
// agrees with it for the released config ([1, 3, 5]).

extension ConfigReader {
    /// A non-empty array of integers, each in `range`.
    public func ints(_ key: String, in range: ClosedRange<Int> = 1 ... (1 << 24)) throws -> [Int] {
        guard let a = json[key]?.arrayValue, !a.isEmpty else {
            throw FormatError(file, "config value '\(keyPrefix)\(key)' missing or not a non-empty array")
        }
        return try a.enumerated().map { i, v in try element(key, i, v, range) }
    }

    /// A non-empty array of non-empty integer arrays.
    public func intLists(_ key: String, in range: ClosedRange<Int> = 1 ... (1 << 24)) throws -> [[Int]] {
        guard let a = json[key]?.arrayValue, !a.isEmpty else {
            throw FormatError(file, "config value '\(keyPrefix)\(key)' missing or not a non-empty array")
        }
        return try a.enumerated().map { i, row in
            guard let r = row.arrayValue, !r.isEmpty else {
                throw FormatError(file, "config value '\(keyPrefix)\(key)[\(i)]' is not a non-empty array")
            }
            return try r.enumerated().map { j, v in try element("\(key)[\(i)]", j, v, range) }
        }
    }

    private func element(_ key: String, _ i: Int, _ v: JSONValue, _ range: ClosedRange<Int>) throws -> Int {
        guard let x = v.intValue else {
            throw FormatError(file, "config value '\(keyPrefix)\(key)[\(i)]' is not an integer")
        }
        guard range.contains(x) else {
            throw FormatError(
                file,
                "config value '\(keyPrefix)\(key)[\(i)]' is \(x), outside \(range.lowerBound)...\(range.upperBound)")
        }
        return x
    }
}

/// `vocoder/config.json` (BigVGAN hyper-parameters; training-only keys are not read).
public struct VocoderConfig: Sendable, Equatable {
    public enum ResBlock: String, Sendable {
        case amp1 = "1"
        case amp2 = "2"
    }
    public enum Activation: String, Sendable { case snake, snakebeta }

    public let numMels: Int
    public let upsampleRates: [Int]
    public let upsampleKernelSizes: [Int]
    public let upsampleInitialChannel: Int
    public let resblock: ResBlock
    public let resblockKernelSizes: [Int]
    public let resblockDilationSizes: [[Int]]
    public let activation: Activation
    /// α (and β) are stored as logarithms: the activation uses e^α.
    public let snakeLogscale: Bool
    /// conv_post has a bias (official default true; the release: false).
    public let useBiasAtFinal: Bool
    /// tanh at the end (official default true); else clamp to [−1, 1] (the release).
    public let useTanhAtFinal: Bool

    /// Taps of every anti-alias filter (Activation1d's default kernel for ratio 2).
    public static let filterTaps = 12

    public var stages: Int { upsampleRates.count }
    /// Channels after upsampling stage `i` (0-based): C / 2^(i+1).
    public func channels(afterStage i: Int) -> Int { upsampleInitialChannel >> (i + 1) }

    public init(json: JSONValue, file: String) throws {
        let c = ConfigReader(json, file: file)
        numMels = try c.int("num_mels")
        upsampleRates = try c.ints("upsample_rates", in: 1 ... 64)
        upsampleKernelSizes = try c.ints("upsample_kernel_sizes", in: 1 ... 1024)
        try Self.zipped("upsample_kernel_sizes", upsampleKernelSizes.count, "upsample_rates", upsampleRates.count, file)
        upsampleInitialChannel = try c.int("upsample_initial_channel")
        guard upsampleRates.count < 24, upsampleInitialChannel % (1 << upsampleRates.count) == 0 else {
            throw FormatError(
                file,
                "config value 'upsample_initial_channel' is \(upsampleInitialChannel), not halvable \(upsampleRates.count) times (one per upsample_rates entry)"
            )
        }
        guard let rb = c.string("resblock"), let r = ResBlock(rawValue: rb) else {
            throw FormatError(file, "config value 'resblock' missing or not \"1\" or \"2\"")
        }
        resblock = r
        resblockKernelSizes = try c.ints("resblock_kernel_sizes", in: 1 ... 1024)
        resblockDilationSizes = try c.intLists("resblock_dilation_sizes", in: 1 ... 1024)
        try Self.zipped(
            "resblock_dilation_sizes", resblockDilationSizes.count, "resblock_kernel_sizes", resblockKernelSizes.count,
            file)
        guard let a = c.string("activation"), let act = Activation(rawValue: a) else {
            throw FormatError(file, "config value 'activation' missing or not snake or snakebeta")
        }
        activation = act
        guard let logscale = json["snake_logscale"]?.boolValue else {
            throw FormatError(file, "config value 'snake_logscale' missing or not a boolean")
        }
        snakeLogscale = logscale
        useBiasAtFinal = c.bool("use_bias_at_final", default: true)
        useTanhAtFinal = c.bool("use_tanh_at_final", default: true)
    }

    /// Lists the official code zips together must have as many entries.
    static func zipped(_ key: String, _ n: Int, _ other: String, _ m: Int, _ file: String) throws {
        guard n == m else {
            throw FormatError(file, "config value '\(key)' has \(n) entries, but '\(other)' has \(m)")
        }
    }
}

/// The generator's tensors after weight-norm folding: `.kaf` name `vocoder.<rel>`, release name
/// `<rel>` in `model.pt["generator"]`, where a conv's `<base>.weight` is stored as
/// `<base>.weight_g` and `<base>.weight_v` (see `isWeightNormed`). In the release's order
/// (a weight-normed conv lists its bias first, as PyTorch's weight_norm re-registers the weight).
public struct VocoderTensors: Sendable {
    public let config: VocoderConfig

    public init(_ config: VocoderConfig) { self.config = config }

    /// Roles as the converter always gave them: 1-D tensors, the anti-alias filters and the
    /// activations' parameters are `.vector`; the conv weights `.vocoder`.
    func spec(_ rel: String, _ shape: [Int]) -> TensorSpec {
        let vector = shape.count <= 1 || rel.hasSuffix(".filter") || rel.contains(".act.")
        return TensorSpec("vocoder.\(rel)", source: rel, shape, vector ? .vector : .vocoder)
    }

    /// A weight-normed convolution: bias (when present) then the folded weight.
    func conv(_ base: String, _ weight: [Int], bias: Bool = true) -> [TensorSpec] {
        (bias ? [spec(base + ".bias", [weight[0]])] : []) + [spec(base + ".weight", weight)]
    }

    /// `ConvTranspose1d` stores [in, out, k]; its bias has `out` entries.
    func convTranspose(_ base: String, _ weight: [Int]) -> [TensorSpec] {
        [spec(base + ".bias", [weight[1]]), spec(base + ".weight", weight)]
    }

    func activation(_ base: String, channels: Int) -> [TensorSpec] {
        let taps = [1, 1, VocoderConfig.filterTaps]
        var out = [spec(base + ".act.alpha", [channels])]
        if config.activation == .snakebeta { out.append(spec(base + ".act.beta", [channels])) }
        return out + [spec(base + ".upsample.filter", taps), spec(base + ".downsample.lowpass.filter", taps)]
    }

    /// Whether the release stores `spec` as a weight_g/weight_v pair (every conv weight).
    public static func isWeightNormed(_ spec: TensorSpec) -> Bool {
        spec.role == .vocoder && spec.source.hasSuffix(".weight")
    }

    /// The tensors of residual block `j` (stage j / #kernels, kernel j % #kernels).
    public func resblock(_ j: Int) -> [TensorSpec] {
        let n = config.resblockKernelSizes.count
        let ch = config.channels(afterStage: j / n), k = config.resblockKernelSizes[j % n]
        let dilations = config.resblockDilationSizes[j % n].count
        let b = "resblocks.\(j)."
        func convs(_ name: String) -> [TensorSpec] {
            (0 ..< dilations).flatMap { conv(b + "\(name).\($0)", [ch, ch, k]) }
        }
        switch config.resblock {
        case .amp1:
            return convs("convs1") + convs("convs2")
                + (0 ..< 2 * dilations).flatMap { activation(b + "activations.\($0)", channels: ch) }
        case .amp2:
            return convs("convs") + (0 ..< dilations).flatMap { activation(b + "activations.\($0)", channels: ch) }
        }
    }

    public var resblockCount: Int { config.stages * config.resblockKernelSizes.count }

    /// Every tensor, in the release's order.
    public var all: [TensorSpec] {
        let c = config
        var out = conv("conv_pre", [c.upsampleInitialChannel, c.numMels, 7])
        for i in 0 ..< c.stages {
            out += convTranspose(
                "ups.\(i).0", [c.upsampleInitialChannel >> i, c.channels(afterStage: i), c.upsampleKernelSizes[i]])
        }
        for j in 0 ..< resblockCount { out += resblock(j) }
        let last = c.channels(afterStage: c.stages - 1)
        out += activation("activation_post", channels: last)
        return out + conv("conv_post", [1, last, 7], bias: c.useBiasAtFinal)
    }
}
