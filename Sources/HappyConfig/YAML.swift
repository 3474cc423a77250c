import CYaml
import HappyCore

/// A YAML node with its 1-based position in the source.
public struct YAMLNode: Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        /// `plain` is false for quoted and block scalars (never typed as numbers/null/bools).
        case scalar(String, plain: Bool)
        case sequence([YAMLNode])
        case mapping([(key: YAMLNode, value: YAMLNode)])

        public static func == (a: Kind, b: Kind) -> Bool {
            switch (a, b) {
            case let (.scalar(x, p), .scalar(y, q)): return x == y && p == q
            case let (.sequence(x), .sequence(y)): return x == y
            case let (.mapping(x), .mapping(y)):
                return x.count == y.count && zip(x, y).allSatisfy { $0.key == $1.key && $0.value == $1.value }
            default: return false
            }
        }
    }
    public var kind: Kind
    public var line: Int
    public var column: Int

    public var scalar: String? { if case .scalar(let s, _) = kind { return s }; return nil }
    /// A plain `~`, `null`, `Null`, `NULL` or empty scalar.
    public var isNull: Bool {
        if case .scalar(let s, true) = kind { return s.isEmpty || s == "~" || s == "null" || s == "Null" || s == "NULL" }
        return false
    }
    public var typeName: String {
        switch kind {
        case .scalar: return isNull ? "null" : "a scalar"
        case .sequence: return "a list"
        case .mapping: return "a mapping"
        }
    }
}

public struct YAMLError: HappyError, Equatable {
    public var file: String
    public var line: Int
    public var column: Int
    public var problem: String
    public var what: String { "\(file):\(line):\(column): YAML syntax error: \(problem)" }
    public var hint: String? { "fix the profile file at line \(line), column \(column)" }
}

public enum YAMLReader {
    /// Parses one YAML document (an empty document is an empty mapping). `file` names the
    /// source in errors.
    public static func parse(_ text: String, file: String) throws -> YAMLNode {
        var parser = yaml_parser_t()
        guard yaml_parser_initialize(&parser) == 1 else {
            throw YAMLError(file: file, line: 1, column: 1, problem: "cannot initialise the YAML parser")
        }
        defer { yaml_parser_delete(&parser) }
        let bytes = Array(text.utf8)
        return try bytes.withUnsafeBufferPointer { buf -> YAMLNode in
            yaml_parser_set_input_string(&parser, buf.baseAddress, buf.count)
            yaml_parser_set_encoding(&parser, YAML_UTF8_ENCODING)
            var b = Builder(file: file)
            while true {
                var event = yaml_event_t()
                guard yaml_parser_parse(&parser, &event) == 1 else {
                    let problem = parser.problem.map { String(cString: $0) } ?? "invalid YAML"
                    let mark = parser.problem_mark
                    var msg = problem
                    if let ctx = parser.context { msg = String(cString: ctx) + ": " + problem }
                    throw YAMLError(file: file, line: Int(mark.line) + 1, column: Int(mark.column) + 1, problem: msg)
                }
                defer { yaml_event_delete(&event) }
                let done = try b.handle(&event)
                if done { break }
            }
            return b.result ?? YAMLNode(kind: .mapping([]), line: 1, column: 1)
        }
    }

    struct Builder {
        enum Frame {
            case seq([YAMLNode], Int, Int, String?)
            case map([(key: YAMLNode, value: YAMLNode)], YAMLNode?, Int, Int, String?)
        }
        let file: String
        var stack: [Frame] = []
        var result: YAMLNode?
        var anchors: [String: YAMLNode] = [:]
        var documents = 0

        init(file: String) { self.file = file }

        mutating func add(_ node: YAMLNode, anchor: String?) throws {
            if let anchor { anchors[anchor] = node }
            guard let top = stack.popLast() else {
                result = node
                return
            }
            switch top {
            case .seq(var items, let l, let c, let a):
                items.append(node)
                stack.append(.seq(items, l, c, a))
            case .map(var pairs, let key, let l, let c, let a):
                if let key {
                    if let k = key.scalar, pairs.contains(where: { $0.key.scalar == k }) {
                        throw YAMLError(file: file, line: key.line, column: key.column, problem: "duplicate key '\(k)'")
                    }
                    pairs.append((key: key, value: node))
                    stack.append(.map(pairs, nil, l, c, a))
                } else {
                    stack.append(.map(pairs, node, l, c, a))
                }
            }
        }

        /// Returns true at the end of the stream.
        mutating func handle(_ e: inout yaml_event_t) throws -> Bool {
            let line = Int(e.start_mark.line) + 1
            let col = Int(e.start_mark.column) + 1
            func str(_ p: UnsafeMutablePointer<yaml_char_t>?) -> String? {
                p.map { String(cString: UnsafeRawPointer($0).assumingMemoryBound(to: CChar.self)) }
            }
            switch e.type {
            case YAML_STREAM_END_EVENT:
                return true
            case YAML_DOCUMENT_START_EVENT:
                documents += 1
                if documents > 1 {
                    throw YAMLError(file: file, line: line, column: col, problem: "only one YAML document is allowed")
                }
            case YAML_SCALAR_EVENT:
                let s = e.data.scalar
                let value = s.value.map {
                    String(decoding: UnsafeBufferPointer(start: $0, count: s.length), as: UTF8.self)
                } ?? ""
                let plain = s.style == YAML_PLAIN_SCALAR_STYLE && s.tag == nil
                try add(YAMLNode(kind: .scalar(value, plain: plain), line: line, column: col), anchor: str(s.anchor))
            case YAML_SEQUENCE_START_EVENT:
                stack.append(.seq([], line, col, str(e.data.sequence_start.anchor)))
            case YAML_SEQUENCE_END_EVENT:
                guard case .seq(let items, let l, let c, let a)? = stack.popLast() else { break }
                try add(YAMLNode(kind: .sequence(items), line: l, column: c), anchor: a)
            case YAML_MAPPING_START_EVENT:
                stack.append(.map([], nil, line, col, str(e.data.mapping_start.anchor)))
            case YAML_MAPPING_END_EVENT:
                guard case .map(let pairs, _, let l, let c, let a)? = stack.popLast() else { break }
                try add(YAMLNode(kind: .mapping(pairs), line: l, column: c), anchor: a)
            case YAML_ALIAS_EVENT:
                let name = str(e.data.alias.anchor) ?? ""
                guard let n = anchors[name] else {
                    throw YAMLError(file: file, line: line, column: col, problem: "unknown alias '*\(name)'")
                }
                try add(n, anchor: nil)
            default:
                break
            }
            return false
        }
    }
}
