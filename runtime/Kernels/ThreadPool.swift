import Foundation
import Synchronization

/// A persistent pool of threads for the row-parallel kernels (ggml-style): `parallelFor` splits
/// 0..<n into one contiguous range per thread, the calling thread takes the first range, and
/// returns when all are done. Workers spin for a while after each job (decode issues ~200 short
/// calls per token, too short to pay for a futex wake-up each time) and then sleep on a condition
/// variable. A call allocates nothing. Not reentrant: one `parallelFor` at a time.
public final class ThreadPool: @unchecked Sendable {
    public let threadCount: Int
    /// How long an idle worker spins before it sleeps.
    public let spinNanoseconds: UInt64

    private let generation = Atomic<Int>(0)
    private let pending = Atomic<Int>(0)
    private let sleepers = Atomic<Int>(0)
    private nonisolated(unsafe) var job: ((Range<Int>, Int) -> Void)?
    private nonisolated(unsafe) var jobN = 0
    private nonisolated(unsafe) var stopping = false
    private var workers: [pthread_t] = []
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let cond = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)

    /// `threads` = 0 means the active cores. A thread the system refuses (EAGAIN: process or memory
    /// limits) is an error in every build mode (a `precondition` vanishes under -Ounchecked); the
    /// workers already started are stopped by deinit.
    public init(threads: Int = 0, spinNanoseconds: UInt64 = 2_000_000) throws {
        threadCount = threads > 0 ? threads : max(1, ProcessInfo.processInfo.activeProcessorCount)
        self.spinNanoseconds = spinNanoseconds
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(cond, nil)
        for i in 1 ..< threadCount {
            let ctx = Unmanaged.passRetained(WorkerContext(pool: self, index: i)).toOpaque()
            var t = pthread_t()
            let rc = pthread_create(
                &t, nil,
                { raw in
                    let c = Unmanaged<WorkerContext>.fromOpaque(raw!).takeRetainedValue()
                    c.pool.unsafelyUnwrapped.workerLoop(index: c.index)
                    return nil
                }, ctx)
            guard rc == 0 else {
                Unmanaged<WorkerContext>.fromOpaque(ctx).release()
                throw ThreadPoolError(requested: threadCount, started: i, code: rc)
            }
            workers.append(t)
        }
    }

    deinit {
        stopping = true
        generation.add(1, ordering: .sequentiallyConsistent)
        pthread_mutex_lock(mutex)
        pthread_cond_broadcast(cond)
        pthread_mutex_unlock(mutex)
        for t in workers { pthread_join(t, nil) }
        pthread_mutex_destroy(mutex)
        pthread_cond_destroy(cond)
        mutex.deallocate()
        cond.deallocate()
    }

    private final class WorkerContext {
        unowned(unsafe) let pool: ThreadPool?
        let index: Int
        init(pool: ThreadPool, index: Int) {
            self.pool = pool
            self.index = index
        }
    }

    /// Thread i's share of 0..<n (contiguous, sizes differ by at most 1).
    @inline(__always) static func chunk(_ i: Int, of t: Int, _ n: Int) -> Range<Int> {
        (i * n / t) ..< ((i + 1) * n / t)
    }

    /// Runs `body` on a partition of 0..<n over the pool's threads and waits for all of them.
    /// With n < 2 or one thread, runs `body(0..<n)` inline.
    public func parallelFor(n: Int, _ body: (Range<Int>) -> Void) {
        parallelFor(n: n) { r, _ in body(r) }
    }

    /// The rows of `w` split over the threads in whole units of `w.rowQuantum` (8 for `_r8` types).
    public func parallelForRows(_ w: WeightMatrix, _ body: (Range<Int>, Int) -> Void) {
        let q = w.rowQuantum
        if q == 1 { return parallelFor(n: w.rows, body) }
        parallelFor(n: w.rows / q) { r, t in body(r.lowerBound * q ..< r.upperBound * q, t) }
    }

    /// Same, and tells `body` which thread (0..<threadCount) runs the range: index per-thread
    /// scratch with it.
    public func parallelFor(n: Int, _ body: (Range<Int>, Int) -> Void) {
        let t = min(threadCount, n)
        if t <= 1 {
            if n > 0 { body(0 ..< n, 0) }
            return
        }
        withoutActuallyEscaping(body) { b in
            job = b
            jobN = n
            // Workers with index ≥ t get an empty range; all of them report back.
            pending.store(threadCount - 1, ordering: .relaxed)
            generation.add(1, ordering: .sequentiallyConsistent)
            if sleepers.load(ordering: .sequentiallyConsistent) > 0 {
                pthread_mutex_lock(mutex)
                pthread_cond_broadcast(cond)
                pthread_mutex_unlock(mutex)
            }
            b(Self.chunk(0, of: t, n), 0)
            // Spin, but yield once in a while: on an oversubscribed machine a worker may be
            // waiting for this very core, and a pure spin would hold it for a whole time slice
            // (measured: 3.8 ms per call on 2 busy cores).
            var spins = 0
            while pending.load(ordering: .acquiring) > 0 {
                cpuRelax()
                spins += 1
                if spins & 1023 == 0 { sched_yield() }
            }
            job = nil
        }
    }

    private func workerLoop(index: Int) {
        var seen = 0
        while true {
            var g = generation.load(ordering: .acquiring)
            if g == seen {
                let start = DispatchTime.now().uptimeNanoseconds
                var spins = 0
                while g == seen {
                    cpuRelax()
                    g = generation.load(ordering: .acquiring)
                    spins += 1
                    if spins & 1023 == 0 { sched_yield() }  // see parallelFor
                    if spins & 255 == 0 && DispatchTime.now().uptimeNanoseconds - start > spinNanoseconds {
                        pthread_mutex_lock(mutex)
                        sleepers.add(1, ordering: .sequentiallyConsistent)
                        while generation.load(ordering: .sequentiallyConsistent) == seen {
                            pthread_cond_wait(cond, mutex)
                        }
                        sleepers.subtract(1, ordering: .sequentiallyConsistent)
                        pthread_mutex_unlock(mutex)
                        g = generation.load(ordering: .acquiring)
                    }
                }
            }
            seen = g
            if stopping { return }
            let n = jobN, t = min(threadCount, n)
            if index < t, let b = job { b(Self.chunk(index, of: t, n), index) }
            pending.subtract(1, ordering: .releasing)
        }
    }
}

/// The system would not start another thread.
public struct ThreadPoolError: Error, CustomStringConvertible {
    public let requested, started: Int
    public let code: Int32
    public var description: String {
        "cannot start thread \(started + 1) of \(requested): \(String(cString: strerror(code))) "
            + "(the process or memory limits allow fewer threads; try a smaller --threads)"
    }
}

/// Spin-loop body. (`_mm_pause` is declared, not defined, by clang's header: Swift imports it as an
/// external symbol that does not link, so the spin is a plain re-load of the atomic.)
@inline(__always) func cpuRelax() {}

/// The same split through Dispatch (for the benchmark's overhead comparison).
public func dispatchParallelFor(threads: Int, n: Int, _ body: (Range<Int>) -> Void) {
    let t = min(threads, n)
    if t <= 1 {
        if n > 0 { body(0 ..< n) }
        return
    }
    withoutActuallyEscaping(body) { b in
        let box = UncheckedBox(b)
        DispatchQueue.concurrentPerform(iterations: t) { i in box.value(ThreadPool.chunk(i, of: t, n)) }
    }
}

struct UncheckedBox<T>: @unchecked Sendable {
    let value: T
    init(_ v: T) { value = v }
}
