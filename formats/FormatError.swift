/// The one error every reader and writer throws: it names the file and says what is wrong,
/// in one line. The CLIs print `description` and exit 2.
public struct FormatError: Error, CustomStringConvertible, Equatable {
    public let file: String
    public let message: String

    public init(_ file: String, _ message: String) {
        self.file = file
        self.message = message
    }

    public var description: String { "\(file): \(message)" }
}
