import Foundation
import Testing

@testable import KAF

#if canImport(Glibc)
import Glibc
#endif

/// Item 6: bench option values overflowed (-d 2^63-1 trapped) or were allocated before the context
/// check (-p 10^11 aborted on 800 GB, -p 10^9 used 8 GB for 22 s). Now one line, exit 2, at once.
@Test func benchOptionValuesBeyondTheContextAreAnErrorBeforeAllocating() throws {
    let dir = CLI.tempDir(), q = dir + "/q.kaf"
    #expect(try CLI.run("kimi-convert", ["--f32", CLI.fixtures + "/tiny-qwen2", q]).status == 0)
    for args in [
        ["-p", "0", "-n", "2", "-d", "9223372036854775807"],
        ["-p", "0", "-n", "9223372036854775807", "-d", "9223372036854775807"],
        ["-p", "100000000000"],
        ["-p", "1000000000"],
        ["-p", "4", "-n", "600"],
    ] {
        let r = try CLI.run("kimi-run", [q, "bench", "-r", "1", "-t", "1"] + args)
        #expect(
            r.status == 2 && r.stderr.hasPrefix("kimi-run: error: \(q): bench needs ")
                && r.stderr.contains("more than the model's context of") && r.stderr.split(separator: "\n").count == 1,
            "\(args): \(r.status) \(r.stderr.prefix(300))")
    }
}

/// Item 7: a thread the system refuses was a `precondition` (a trap in debug builds, nothing under
/// -Ounchecked). Here each thread's stack is 1 GB (ulimit -s) in a 3 GB address space (ulimit -v),
/// so the third thread cannot start: one line naming the limit, exit 2.
@Test func refusedThreadIsAnErrorNotATrap() throws {
    let dir = CLI.tempDir(), q = dir + "/q.kaf"
    #expect(try CLI.run("kimi-convert", ["--f32", CLI.fixtures + "/tiny-qwen2", q]).status == 0)
    let r = try CLI.shell(
        "ulimit -v 3000000; ulimit -s 1000000; exec \"$BIN/kimi-run\" '\(q)' bench -p 4 -n 2 -r 1 -t 8")
    #expect(
        r.status == 2 && r.stderr.hasPrefix("kimi-run: error: cannot start thread ")
            && r.stderr.contains("--threads") && r.stderr.split(separator: "\n").count == 1,
        "\(r.status) \(r.stderr.prefix(300))")
}
