import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Writes go to a temporary file beside the target and become visible only by a rename after
/// `fsync`: a failed or interrupted run leaves no half-written output.
///
/// Temp files: `DIR/.BASE.tmp-PID`. The paths in use are kept in a C buffer allocated before any
/// signal handler exists, so the handler only reads memory and calls `unlink` and `_exit`
/// (async-signal-safe). A run killed by SIGKILL (or a crash) leaves its temp file; the next write
/// to the same target removes it when it is stale: the name ends in a PID that is not ours and no
/// process with that PID exists, and the file is a regular file owned by us.
public enum AtomicFile {
    // Literals, not static lets, inside the handler: reading a global may run its lazy initializer.
    private static let slots = 8
    private static let slotBytes = 4096
    nonisolated(unsafe) private static let table: UnsafeMutablePointer<CChar> = {
        let p = UnsafeMutablePointer<CChar>.allocate(capacity: 8 * 4096)
        p.initialize(repeating: 0, count: 8 * 4096)
        return p
    }()

    /// The temp path for `target`: hidden, same folder (same file system, so rename is atomic).
    public static func tempPath(for target: String) -> String {
        let (dir, base) = split(target)
        return "\(dir)/.\(base).tmp-\(getpid())"
    }

    private static func split(_ target: String) -> (dir: String, base: String) {
        let slash = target.lastIndex(of: "/")
        let dir = slash.map { String(target[..<$0]) } ?? "."
        let base = slash.map { String(target[target.index(after: $0)...]) } ?? target
        return (dir.isEmpty ? "/" : dir, base)
    }

    /// An output path that can be written: not empty, not a folder. Checked before any work.
    public static func checkTarget(_ target: String) throws {
        guard !target.isEmpty else { throw FormatError("(output)", "the output path is empty") }
        var st = stat()
        if target.hasSuffix("/") || (stat(target, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR) {
            throw FormatError(target, "is a folder, expected a file name")
        }
    }

    /// Removes stale temp files of `target` left by runs that were killed (see the type's comment).
    /// A PID that was reused by another process keeps its file: only a PID with no process is stale.
    public static func removeStaleTemps(for target: String) {
        let (dir, base) = split(target)
        let prefix = ".\(base).tmp-"
        guard let d = opendir(dir) else { return }
        defer { closedir(d) }
        let me = getpid()
        while let ent = readdir(d) {
            let name = withUnsafeBytes(of: ent.pointee.d_name) { raw in
                String(cString: raw.baseAddress!.assumingMemoryBound(to: CChar.self))
            }
            guard name.hasPrefix(prefix) else { continue }
            let digits = name.dropFirst(prefix.count)
            guard !digits.isEmpty, digits.count <= 10, digits.allSatisfy({ $0.isASCII && $0.isNumber }),
                let pid = Int32(digits), pid > 0, pid != me
            else { continue }
            guard kill(pid, 0) != 0 && errno == ESRCH else { continue }
            let path = "\(dir)/\(name)"
            var st = stat()
            guard lstat(path, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG, st.st_uid == geteuid() else { continue }
            unlink(path)
        }
    }

    /// A scratch file the process removes itself (`removeScratch`) and the signal handler removes
    /// on a cleanup signal (kimi-parity's temporary reference .kaf). Call before it exists.
    public static func registerScratch(_ path: String) { register(path) }

    /// Removes a scratch file and forgets it.
    public static func removeScratch(_ path: String) {
        unlink(path)
        unregister(path)
    }

    /// Records `path` for the signal handler; call before the file is created.
    static func register(_ path: String) {
        let bytes = Array(path.utf8)
        guard bytes.count < slotBytes, let first = bytes.first else { return }
        for s in 0 ..< slots where table[s * slotBytes] == 0 {
            // The first byte last: the handler never sees a half-written path.
            for (i, b) in bytes.enumerated().dropFirst() { table[s * slotBytes + i] = CChar(bitPattern: b) }
            table[s * slotBytes + bytes.count] = 0
            atomicMemoryFence(ordering: .sequentiallyConsistent)
            table[s * slotBytes] = CChar(bitPattern: first)
            atomicMemoryFence(ordering: .sequentiallyConsistent)
            return
        }
    }

    static func unregister(_ path: String) {
        for s in 0 ..< slots where table[s * slotBytes] != 0 {
            if String(cString: table + s * slotBytes) == path { table[s * slotBytes] = 0 }
        }
        atomicMemoryFence(ordering: .sequentiallyConsistent)
    }

    /// Signals that end the process after removing the registered temp files (exit 128 + signal).
    /// SIGHUP, SIGQUIT, SIGPIPE… keep an ignored disposition (nohup); SIGINT and SIGTERM are always
    /// caught (a background job inherits SIGINT ignored, and a user who sends it still means it).
    /// SIGXFSZ is ignored instead, so that `ulimit -f` makes write(2) fail with EFBIG: a one-line
    /// error, after which the normal error path removes the temp file.
    public static let cleanupSignals: [Int32] = [
        SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGPIPE, SIGALRM, SIGUSR1, SIGUSR2, SIGXCPU,
    ]

    public static func installSignalCleanup() {
        // Allocate the table now: the handler must not be the first to touch it (its initializer
        // calls malloc, which aborted when the signal arrived while the main thread was in malloc).
        _ = table
        let handler: @convention(c) (Int32) -> Void = { sig in
            let t = AtomicFile.table  // initialized above: no allocation here
            var s = 0
            while s < 8 {
                if t[s * 4096] != 0 { unlink(t + s * 4096) }
                s += 1
            }
            _exit(128 + sig)
        }
        for sig in cleanupSignals {
            var old = sigaction()
            sigaction(sig, nil, &old)
            let ignored = unsafeBitCast(old.__sigaction_handler.sa_handler, to: Int.self) == 1  // SIG_IGN
            if sig != SIGINT && sig != SIGTERM && ignored { continue }
            var sa = sigaction()
            sa.__sigaction_handler.sa_handler = handler
            sigfillset(&sa.sa_mask)  // one cleanup at a time
            sa.sa_flags = 0
            sigaction(sig, &sa, nil)
        }
        signal(SIGXFSZ, SIG_IGN)
        // The mask is inherited (a parent's thread may block these): a blocked SIGTERM would let the
        // run finish, or leave it hanging in a pipeline, instead of cleaning up.
        var set = sigset_t()
        sigemptyset(&set)
        for sig in cleanupSignals { sigaddset(&set, sig) }
        pthread_sigmask(SIG_UNBLOCK, &set, nil)
    }

    /// fsync, then rename into place, then fsync of the folder. Without `overwrite` the rename
    /// never replaces a file: one that appeared at `target` after the start (another run writing
    /// the same output) is kept and this run fails.
    static func commit(fd: Int32, temp: String, target: String, overwrite: Bool) throws {
        if fsync(fd) != 0 { throw FormatError(target, "fsync failed: \(String(cString: strerror(errno)))") }
        if overwrite {
            if rename(temp, target) != 0 {
                throw FormatError(target, "cannot rename temp file into place: \(String(cString: strerror(errno)))")
            }
        } else {
            try renameNoReplace(temp, target)
        }
        let dfd = open(split(target).dir, O_RDONLY | O_DIRECTORY)
        if dfd >= 0 {
            _ = fsync(dfd)
            close(dfd)
        }
    }

    private typealias Renameat2 =
        @convention(c) (
            Int32, UnsafePointer<CChar>?, Int32, UnsafePointer<CChar>?, UInt32
        ) -> Int32
    /// glibc ≥ 2.28 has renameat2, but Swift's Glibc module does not declare it (it needs _GNU_SOURCE).
    nonisolated(unsafe) private static let renameat2: Renameat2? = dlsym(nil, "renameat2").map {
        unsafeBitCast($0, to: Renameat2.self)
    }

    private static func renameNoReplace(_ temp: String, _ target: String) throws {
        let appeared = FormatError(
            target, "already exists: another program created it while this one ran (use --force to overwrite)")
        func failed(_ what: String) -> FormatError {
            FormatError(target, "cannot \(what) temp file into place: \(String(cString: strerror(errno)))")
        }
        if let renameat2 {
            if renameat2(AT_FDCWD, temp, AT_FDCWD, target, 1 /* RENAME_NOREPLACE */) == 0 { return }
            if errno == EEXIST { throw appeared }
            // EINVAL / ENOSYS: this file system or kernel lacks the flag; try a hard link.
            guard errno == EINVAL || errno == ENOSYS else { throw failed("rename") }
        }
        // link(2) fails with EEXIST instead of replacing.
        if link(temp, target) == 0 {
            unlink(temp)
            return
        }
        if errno == EEXIST { throw appeared }
        guard errno == EPERM || errno == EOPNOTSUPP || errno == EMLINK else { throw failed("link") }
        // No hard links either (e.g. FAT): check, then rename. A file appearing between the two is
        // replaced; no better is possible here.
        if access(target, F_OK) == 0 { throw appeared }
        if rename(temp, target) != 0 { throw failed("rename") }
    }

    /// Creates `target`'s temp file, registered for the signal cleanup before it exists (a signal
    /// between open and register would leave it behind), after removing stale ones. On failure it
    /// is unregistered and the error names `what` (default: the temp path).
    static func createTemp(for target: String, flags: Int32 = O_WRONLY, what: String? = nil) throws -> (
        temp: String, fd: Int32
    ) {
        removeStaleTemps(for: target)
        let temp = tempPath(for: target)
        register(temp)
        let fd = open(temp, flags | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        if fd < 0 {
            unregister(temp)
            throw FormatError(target, "cannot create \(what ?? temp): \(String(cString: strerror(errno)))")
        }
        return (temp, fd)
    }

    /// Writes `bytes` to `target` atomically (replacing an existing file only with `overwrite`).
    public static func write(_ bytes: [UInt8], to target: String, overwrite: Bool = true) throws {
        try checkTarget(target)
        let (temp, fd) = try createTemp(for: target)
        defer { unregister(temp) }
        var ok = false
        defer {
            close(fd)
            if !ok { unlink(temp) }
        }
        try bytes.withUnsafeBytes { try writeAll(fd, $0, file: target) }
        try commit(fd: fd, temp: temp, target: target, overwrite: overwrite)
        ok = true
    }

    static func writeAll(_ fd: Int32, _ data: UnsafeRawBufferPointer, file: String) throws {
        var p = data.baseAddress
        var left = data.count
        while left > 0, let q = p {
            let n = Glibc.write(fd, q, left)
            if n < 0 {
                if errno == EINTR { continue }
                throw FormatError(file, "write failed: \(String(cString: strerror(errno)))")
            }
            p = q + n
            left -= n
        }
    }
}

/// A file written piece by piece that appears at `target` only when `commit` succeeds (the temp
/// file of `AtomicFile`, registered for the signal cleanup). Without `commit`, deinit removes it.
public final class AtomicOutput {
    public let target, temp: String
    /// The temp file's descriptor (for writers that take one, e.g. libsndfile).
    public let fd: Int32
    private var done = false

    public init(target: String) throws {
        try AtomicFile.checkTarget(target)
        self.target = target
        (temp, fd) = try AtomicFile.createTemp(for: target, flags: O_RDWR, what: "the output file")
    }

    public func write(_ data: UnsafeRawBufferPointer) throws { try AtomicFile.writeAll(fd, data, file: target) }

    /// fsync and rename into place.
    public func commit(overwrite: Bool = true) throws {
        try AtomicFile.commit(fd: fd, temp: temp, target: target, overwrite: overwrite)
        finish(keep: true)
    }

    /// Remove the temp file.
    public func abandon() { finish(keep: false) }

    private func finish(keep: Bool) {
        guard !done else { return }
        done = true
        close(fd)
        if !keep { unlink(temp) }
        AtomicFile.unregister(temp)
    }

    deinit { finish(keep: false) }
}
