import COpenBLAS

#if canImport(Glibc)
import Glibc
#endif

/// The flags /proc/cpuinfo lists for the first CPU (only what the kernel enabled); empty elsewhere.
public let cpuFlags: Set<String> = {
    #if os(Linux)
    guard let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
        let line = text.split(separator: "\n").first(where: { $0.hasPrefix("flags") })
    else { return [] }
    return Set(line.split(separator: " ").map(String.init))
    #else
    return []
    #endif
}()

/// The OpenBLAS kernel set sgemm runs, after `blasCore` has checked it once.
///
/// Why: OpenBLAS picks its kernels by CPU model at load time, and a release older than the CPU
/// (Debian 12 ships 0.3.21) falls back to "Prescott", SSE3 kernels at a fraction of the speed
/// (seen here on a recent Xeon: sgemm_kernel_PRESCOTT). When that happens and the user set no
/// OPENBLAS_CORETYPE, we re-run OpenBLAS's own dynamic-arch selection with the kernel set the CPU's
/// flags support (SkylakeX for AVX-512, Haswell for AVX2+FMA), as OPENBLAS_CORETYPE would at load.
/// This runs before any BLAS call allocates its buffers. KIMI_BLAS_KEEP_CORE=1 leaves it alone.
public let blasCore: String = {
    func name() -> String { String(cString: openblas_get_corename()) }
    let current = name()
    guard current.lowercased() == "prescott", getenv("OPENBLAS_CORETYPE") == nil,
        getenv("KIMI_BLAS_KEEP_CORE") == nil,
        let quit = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "gotoblas_dynamic_quit"),
        let initialise = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "gotoblas_dynamic_init")
    else { return current }
    let f = cpuFlags
    let want: String
    if ["avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512cd"].allSatisfy(f.contains) {
        want = "SkylakeX"
    } else if ["avx2", "fma"].allSatisfy(f.contains) {
        want = "Haswell"
    } else {
        return current
    }
    typealias Hook = @convention(c) () -> Void
    setenv("OPENBLAS_CORETYPE", want, 1)
    unsafeBitCast(quit, to: Hook.self)()
    unsafeBitCast(initialise, to: Hook.self)()
    unsetenv("OPENBLAS_CORETYPE")
    return name()
}()
