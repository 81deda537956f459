@_exported import ArgumentParser
import Foundation
import KAF

#if canImport(Glibc)
import Glibc
#endif

/// Runs a root command the way every kimi-* tool does: `--help` to stdout with exit 0; a usage
/// error or a bad input file as one line on stderr with exit 2; no stack traces.
public func runCommand<C: ParsableCommand>(
    _ type: C.Type, arguments: [String] = Array(CommandLine.arguments.dropFirst())
) -> Never {
    setvbuf(stdout, nil, _IOLBF, 0)
    AtomicFile.installSignalCleanup()
    do {
        // Swift repairs invalid UTF-8 in argv silently; a prompt must arrive intact or not at all.
        for i in 1 ..< Int(CommandLine.argc) {
            if let a = CommandLine.unsafeArgv[i], String(validatingCString: a) == nil {
                throw CLIError("argument \(i) is not valid UTF-8")
            }
        }
        var command = try type.parseAsRoot(arguments)
        try command.run()
        exit(0)
    } catch let e as ExitCode {
        exit(e.rawValue)  // a deliberate status (kimi-parity: 1 = a case failed)
    } catch let e as FormatError {
        fail(e.description)
    } catch let e as CLIError {
        fail(e.message)
    } catch {
        let code = type.exitCode(for: error)
        let text = type.fullMessage(for: error)
        if code == .success || code.rawValue == 0 {
            if !text.isEmpty { print(text) }
            exit(0)
        }
        fail(text.isEmpty ? "\(error)" : text)
    }
}

/// A plain error from a CLI (bad argument combination etc.), reported like a FormatError.
public struct CLIError: Error, CustomStringConvertible {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

public func fail(_ message: String) -> Never {
    let tool = CommandLine.arguments.first.map { String($0.split(separator: "/").last ?? "") } ?? "kimi"
    var oneLine = message.split(separator: "\n").first.map(String.init) ?? message
    if oneLine.hasPrefix("Error: ") { oneLine.removeFirst(7) }
    var full = "\(tool): error: \(oneLine)\n"
    if message.contains("\n") {
        // ArgumentParser's usage text follows on the next lines.
        full += message.split(separator: "\n").dropFirst().joined(separator: "\n") + "\n"
    }
    fputs(full, stderr)
    exit(2)
}

public func printErr(_ s: String) { fputs(s + "\n", stderr) }

/// One line from stdin without its newline, or nil at end of input; invalid UTF-8 is an error
/// (readLine would replace it silently).
public func readLineUTF8() throws -> String? {
    var line: UnsafeMutablePointer<CChar>? = nil
    var cap = 0
    defer { free(line) }
    let n = getline(&line, &cap, stdin)
    guard n >= 0, let line else { return nil }
    var count = n
    while count > 0 && (line[count - 1] == 10 || line[count - 1] == 13) { count -= 1 }
    let bytes = UnsafeRawBufferPointer(start: line, count: count)
    guard let s = String(validating: bytes, as: UTF8.self) else { throw CLIError("stdin: a line is not valid UTF-8") }
    return s
}

/// Ctrl-C ends a long-running command at once with status 130 (the shell convention for SIGINT),
/// after a newline so the terminal prompt starts on a fresh line. Installed explicitly: a process
/// started from a background job inherits SIGINT as ignored, and a user who sends it still means it.
/// Only async-signal-safe calls in the handler.
public func exitOnInterrupt() {
    signal(SIGINT) { _ in
        var nl: UInt8 = 10
        _ = write(2, &nl, 1)
        _exit(130)
    }
    // The signal mask is inherited too (a parent thread may block SIGINT): unblock it.
    var set = sigset_t()
    sigemptyset(&set)
    sigaddset(&set, SIGINT)
    pthread_sigmask(SIG_UNBLOCK, &set, nil)
}
