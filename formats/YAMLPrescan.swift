import CYaml

/// A pass over libyaml's event stream (the C parser Yams wraps, which keeps its own stack and
/// does not recurse) before Yams builds a tree. Yams composes recursively and shares aliased
/// nodes, so deep nesting could overflow the stack and an alias bomb would only explode when
/// walked; here both are caught in time linear in the file: each anchor remembers the size of
/// its subtree and each alias adds that size to the running count.
enum YAMLPrescan {
    static func check(_ text: String, file: String, maxDepth: Int, maxNodes: Int) throws {
        var parser = yaml_parser_t()
        guard yaml_parser_initialize(&parser) != 0 else { throw FormatError(file, "out of memory reading YAML") }
        defer { yaml_parser_delete(&parser) }
        var utf8 = Array(text.utf8)
        try utf8.withUnsafeMutableBufferPointer { buf in
            yaml_parser_set_input_string(&parser, buf.baseAddress, buf.count)
            yaml_parser_set_encoding(&parser, YAML_UTF8_ENCODING)

            var frames: [(size: Int, anchor: String?)] = []
            var anchors: [String: Int] = [:]
            var total = 0
            func add(_ n: Int) throws {
                total += n  // both <= maxNodes: no overflow
                if total > maxNodes {
                    throw FormatError(file, "YAML expands to more than \(maxNodes) nodes (alias bomb?)")
                }
                if !frames.isEmpty { frames[frames.count - 1].size += n }
            }
            func name(_ p: UnsafeMutablePointer<yaml_char_t>?) -> String? {
                p.map { String(cString: UnsafeRawPointer($0).assumingMemoryBound(to: CChar.self)) }
            }

            var event = yaml_event_t()
            while true {
                guard yaml_parser_parse(&parser, &event) != 0 else {
                    let problem = parser.problem.map { String(cString: $0) } ?? "syntax error"
                    let context = parser.context.map { " " + String(cString: $0) } ?? ""
                    throw FormatError(file, "invalid YAML at line \(parser.problem_mark.line + 1), column \(parser.problem_mark.column + 1): \(problem)\(context)")
                }
                defer { yaml_event_delete(&event) }
                switch event.type {
                case YAML_STREAM_END_EVENT:
                    return
                case YAML_SCALAR_EVENT:
                    try add(1)
                    if let a = name(event.data.scalar.anchor) { anchors[a] = 1 }
                case YAML_SEQUENCE_START_EVENT, YAML_MAPPING_START_EVENT:
                    try add(1)
                    guard frames.count < maxDepth else {
                        throw FormatError(file, "YAML nesting deeper than \(maxDepth) levels at line \(event.start_mark.line + 1)")
                    }
                    let anchor = event.type == YAML_SEQUENCE_START_EVENT
                        ? name(event.data.sequence_start.anchor) : name(event.data.mapping_start.anchor)
                    frames.append((1, anchor))
                case YAML_SEQUENCE_END_EVENT, YAML_MAPPING_END_EVENT:
                    guard let f = frames.popLast() else { break }
                    if let a = f.anchor { anchors[a] = f.size }
                    // The start event already counted 1 in the parent; add the rest.
                    if !frames.isEmpty { frames[frames.count - 1].size += f.size - 1 }
                case YAML_ALIAS_EVENT:
                    let a = name(event.data.alias.anchor) ?? ""
                    guard let size = anchors[a] else {
                        throw FormatError(file, "YAML alias *\(a) at line \(event.start_mark.line + 1) has no anchor")
                    }
                    try add(size)
                default:
                    break
                }
            }
        }
    }
}
