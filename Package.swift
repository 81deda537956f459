// swift-tools-version: 6.0
// Kimi-Audio on the CPU: converter (.kaf writer), runtime, parity report.
import PackageDescription

// Kernel code is built for a target CPU (see README "CPU targets"): without it
// SIMD.addProduct lowers to a libm fmaf call per lane. KIMI_MARCH overrides the
// default x86-64-v3 (AVX2 + FMA + F16C), e.g. KIMI_MARCH=native for benchmarks.
import Foundation
let march = ProcessInfo.processInfo.environment["KIMI_MARCH"] ?? "x86-64-v3"
let cpuFlags: [String] = ["-Xcc", "-march=\(march)"]
let fastSwift: [SwiftSetting] = [
    .unsafeFlags(cpuFlags),
    .unsafeFlags(["-Ounchecked", "-enforce-exclusivity=unchecked"], .when(configuration: .release)),
]
// The one module built for AVX-512 VNNI (prefill int8 tiles); the runtime calls it only on CPUs
// that have it (cpuHasAVX512VNNI), so the rest of the build keeps the baseline above.
let vnniSwift: [SwiftSetting] = [
    .unsafeFlags(cpuFlags + ["-Xcc", "-mavx512f", "-Xcc", "-mavx512bw", "-Xcc", "-mavx512vl", "-Xcc", "-mavx512vnni"]),
    .unsafeFlags(["-Ounchecked", "-enforce-exclusivity=unchecked"], .when(configuration: .release)),
]

let package = Package(
    name: "KimiAudioCPU",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "kimi-convert", targets: ["kimi-convert"]),
        .executable(name: "kimi-run", targets: ["kimi-run"]),
        .executable(name: "kimi-parity", targets: ["kimi-parity"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "5.0.1"),
    ],
    targets: [
        // C system libraries, found with pkg-config (Debian: libzstd-dev, libopenblas-dev,
        // libsndfile1-dev, libjson-c-dev, libsoxr-dev, libkissfft-dev).
        .systemLibrary(name: "CZstd", path: "Sources/CZstd", pkgConfig: "libzstd",
                       providers: [.apt(["libzstd-dev"])]),
        .systemLibrary(name: "COpenBLAS", path: "Sources/COpenBLAS", pkgConfig: "openblas",
                       providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(name: "CSndfile", path: "Sources/CSndfile", pkgConfig: "sndfile",
                       providers: [.apt(["libsndfile1-dev"])]),
        .systemLibrary(name: "CJSONC", path: "Sources/CJSONC", pkgConfig: "json-c",
                       providers: [.apt(["libjson-c-dev"])]),
        // Resampling to 16 kHz with the library librosa's default (soxr_hq) runs on; the STFT's real FFT
        // (mixed radix, so n_fft = 400 directly, no padding to a power of two).
        .systemLibrary(name: "CSoxr", path: "Sources/CSoxr", pkgConfig: "soxr", providers: [.apt(["libsoxr-dev"])]),
        .systemLibrary(name: "CKissFFT", path: "Sources/CKissFFT", pkgConfig: "kissfft-float",
                       providers: [.apt(["libkissfft-dev"])]),

        // formats/: the .kaf container, quant block types, readers of the release's inputs.
        .target(name: "KAF",
                dependencies: ["CZstd", "CJSONC", .product(name: "Yams", package: "Yams")],
                path: "formats", exclude: ["KAF.md", "GOLDEN.md", "PARITY.md"], swiftSettings: fastSwift),
        // converters/: one converter per component, quantizers, precision policy.
        .target(name: "KimiConvert", dependencies: ["KAF", "KimiSIMD"], path: "converters",
                swiftSettings: fastSwift),
        // runtime/: kernels, model components, tokenizer, sampler, pipelines, parity.
        .target(name: "CKernelHints", path: "Sources/CKernelHints"),
        .target(name: "KimiRuntime", dependencies: ["KAF", "COpenBLAS", "CSndfile", "CSoxr", "CKissFFT", "KimiKernelsVNNI", "KimiSIMD", "CKernelHints", "CKernelsAMX"],
                path: "runtime", exclude: ["KernelsVNNI", "KernelsAMX", "Kernels/SIMD"], swiftSettings: fastSwift),
        // AMX bf16 tiles for batches (prefill, encoders, DiT) on `_r8` weights and the vocoder's f16, in C: Swift cannot import the tile
        // intrinsics. Built for AMX alone; called only where the CPU has it (cpuHasAMX).
        .target(name: "CKernelsAMX", path: "runtime/KernelsAMX",
                cSettings: [.unsafeFlags(["-O2", "-mamx-tile", "-mamx-bf16", "-mavx512f", "-mavx512bw", "-mavx512vl",
                                          "-mavx512bf16", "-mf16c", "-mfma"])]),
        .target(name: "KimiKernelsVNNI", dependencies: ["KimiSIMD"], path: "runtime/KernelsVNNI", swiftSettings: vnniSwift),
        // SIMD building blocks (@inlinable) shared by the runtime's kernels and the converter's quantizer.
        .target(name: "KimiSIMD", path: "runtime/Kernels/SIMD", swiftSettings: fastSwift),

        // What the three CLIs share: error reporting (one line, exit 2), progress, JSON output.
        .target(name: "KimiCLI",
                dependencies: ["KAF", .product(name: "ArgumentParser", package: "swift-argument-parser")],
                path: "Sources/KimiCLI", swiftSettings: [.swiftLanguageMode(.v5)]),
        .executableTarget(name: "kimi-convert", dependencies: ["KimiConvert", "KimiCLI"], path: "Sources/kimi-convert",
                          swiftSettings: [.swiftLanguageMode(.v5)]),
        .executableTarget(name: "kimi-run", dependencies: ["KimiRuntime", "KimiCLI"], path: "Sources/kimi-run",
                          swiftSettings: [.swiftLanguageMode(.v5)]),
        // Kernel micro-benchmarks (scripts/bench/kernels.sh); not part of the product.
        .executableTarget(name: "kimi-bench-kernels", dependencies: ["KimiRuntime", "KAF"], path: "Sources/kimi-bench-kernels",
                          swiftSettings: fastSwift + [.swiftLanguageMode(.v5)]),
        // Replays fuzz inputs through the readers; scripts/fuzz.sh builds it with libFuzzer.
        .executableTarget(name: "kimi-fuzz", dependencies: ["KimiRuntime", "KAF"], path: "Sources/kimi-fuzz",
                          swiftSettings: [.swiftLanguageMode(.v5)]),
        .executableTarget(name: "kimi-parity", dependencies: ["KimiRuntime", "KimiConvert", "KimiCLI"], path: "Sources/kimi-parity",
                          swiftSettings: [.swiftLanguageMode(.v5)]),

        .testTarget(name: "KAFTests", dependencies: ["KAF"], path: "Tests/KAFTests", swiftSettings: [.unsafeFlags(cpuFlags)]),
        .testTarget(name: "KimiConvertTests", dependencies: ["KimiConvert", "KimiRuntime"], path: "Tests/KimiConvertTests", swiftSettings: [.unsafeFlags(cpuFlags)]),
        .testTarget(name: "KimiRuntimeTests", dependencies: ["KimiRuntime", "KimiConvert"], path: "Tests/KimiRuntimeTests", swiftSettings: [.unsafeFlags(cpuFlags)]),
    ]
)
