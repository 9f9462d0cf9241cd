import Foundation
import VesselManifest
import Yams

/// Reads typed values out of a composed YAML tree, recording a diagnostic with the node's
/// position for every problem instead of stopping at the first.
struct YAMLWalker {
    let file: String
    private(set) var diagnostics: [Diagnostic] = []

    init(file: String) {
        self.file = file
    }

    func location(_ node: Node?) -> SourceLocation {
        guard let mark = node?.mark else { return SourceLocation(file: file, line: 1, column: 1) }
        return SourceLocation(file: file, line: mark.line, column: mark.column)
    }

    mutating func error(_ message: String, at node: Node?, hint: String? = nil) {
        diagnostics.append(Diagnostic(.error, message, at: location(node), hint: hint))
    }

    mutating func warning(_ message: String, at node: Node?, hint: String? = nil) {
        diagnostics.append(Diagnostic(.warning, message, at: location(node), hint: hint))
    }

    mutating func append(_ diagnostic: Diagnostic) {
        diagnostics.append(diagnostic)
    }

    static func kind(of node: Node) -> String {
        switch node {
        case .mapping: "a mapping"
        case .sequence: "a list"
        case .alias: "an alias"
        case .scalar(let scalar):
            scalar.style == .plain && isNull(scalar.string) ? "null" : "`\(scalar.string)`"
        }
    }

    static func isNull(_ text: String) -> Bool {
        ["", "~", "null", "Null", "NULL"].contains(text)
    }

    /// The keys of a mapping, in order, with their value nodes; reports keys not in `allowed`
    /// (with a suggestion) and duplicated keys.
    mutating func fields(
        _ node: Node, in context: String, allowed: [String], required: [String] = []
    ) -> [String: (key: Node, value: Node)]? {
        guard case .mapping(let mapping) = node else {
            error("\(context) must be a mapping, found \(Self.kind(of: node))", at: node)
            return nil
        }
        var result: [String: (key: Node, value: Node)] = [:]
        var suggested: Set<String> = []
        for (key, value) in mapping {
            guard case .scalar(let scalar) = key else {
                error("keys in \(context) must be plain names", at: key)
                continue
            }
            let name = scalar.string
            if result[name] != nil {
                error("duplicate key `\(name)` in \(context)", at: key, hint: "remove one of them")
                continue
            }
            if !allowed.contains(name) {
                let closest = Suggestion.closest(to: name, in: allowed)
                if let closest { suggested.insert(closest) }
                let hint = closest.map { "did you mean `\($0)`?" } ?? "known keys here: \(allowed.joined(separator: ", "))"
                error("unknown key `\(name)` in \(context)", at: key, hint: hint)
                continue
            }
            result[name] = (key, value)
        }
        // A misspelled required key was already reported with its correction; once is enough.
        for name in required where result[name] == nil && !suggested.contains(name) {
            error("missing required key `\(name)` in \(context)", at: node)
        }
        return result
    }

    mutating func string(_ node: Node, _ what: String) -> String? {
        guard case .scalar(let scalar) = node, !(scalar.style == .plain && Self.isNull(scalar.string)) else {
            error("\(what) must be a string, found \(Self.kind(of: node))", at: node)
            return nil
        }
        return scalar.string
    }

    mutating func nonEmptyString(_ node: Node, _ what: String) -> String? {
        guard let text = string(node, what) else { return nil }
        if text.trimmingCharacters(in: .whitespaces).isEmpty {
            error("\(what) must not be empty", at: node)
            return nil
        }
        return text
    }

    mutating func strings(_ node: Node, _ what: String) -> [String] {
        // A single string is accepted where a list is expected: `authors: Jane` reads naturally.
        if case .scalar = node { return string(node, what).map { [$0] } ?? [] }
        guard case .sequence(let sequence) = node else {
            error("\(what) must be a list of strings, found \(Self.kind(of: node))", at: node)
            return []
        }
        return sequence.compactMap { string($0, "each entry of \(what)") }
    }

    mutating func int(_ node: Node, _ what: String, minimum: Int? = nil) -> Int? {
        guard case .scalar(let scalar) = node, scalar.style == .plain, let value = Int(scalar.string) else {
            error("\(what) must be an integer, found \(Self.kind(of: node))", at: node)
            return nil
        }
        if let minimum, value < minimum {
            error("\(what) must be at least \(minimum), found \(value)", at: node)
            return nil
        }
        return value
    }

    mutating func number(_ node: Node, _ what: String, minimum: Double? = nil) -> Double? {
        guard case .scalar(let scalar) = node, scalar.style == .plain,
            case let parsed = Self.plainScalar(scalar.string), let value = parsed.number
        else {
            error("\(what) must be a number, found \(Self.kind(of: node))", at: node)
            return nil
        }
        if let minimum, !(value >= minimum) {
            error("\(what) must be at least \(minimum), found \(value)", at: node)
            return nil
        }
        return value
    }

    mutating func bool(_ node: Node, _ what: String) -> Bool? {
        guard case .scalar(let scalar) = node, scalar.style == .plain,
            case .bool(let value) = Self.plainScalar(scalar.string)
        else {
            error("\(what) must be true or false, found \(Self.kind(of: node))", at: node)
            return nil
        }
        return value
    }

    /// Converts any node to a free-form value; plain scalars are typed by YAML 1.2 core rules,
    /// quoted ones stay strings.
    mutating func value(_ node: Node) -> Value {
        switch node {
        case .scalar(let scalar):
            return scalar.style == .plain ? Self.plainScalar(scalar.string) : .string(scalar.string)
        case .sequence(let sequence):
            return .array(sequence.map { value($0) })
        case .mapping(let mapping):
            var members: [String: Value] = [:]
            for (key, child) in mapping {
                guard case .scalar(let keyScalar) = key else {
                    error("mapping keys must be strings", at: key)
                    continue
                }
                if members[keyScalar.string] != nil {
                    error("duplicate key `\(keyScalar.string)`", at: key)
                }
                members[keyScalar.string] = value(child)
            }
            return .object(members)
        case .alias:
            error("YAML aliases are not supported in vessel.yaml", at: node, hint: "write the value out")
            return .null
        }
    }

    static func plainScalar(_ text: String) -> Value {
        if isNull(text) { return .null }
        switch text {
        case "true", "True", "TRUE": return .bool(true)
        case "false", "False", "FALSE": return .bool(false)
        case ".nan", ".NaN", ".NAN": return .double(.nan)
        case ".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF": return .double(.infinity)
        case "-.inf", "-.Inf", "-.INF": return .double(-.infinity)
        default: break
        }
        if let int = Int(text) { return .int(int) }
        if text.first.map({ $0.isNumber || $0 == "-" || $0 == "+" || $0 == "." }) == true,
            let double = Double(text), double.isFinite
        {
            return .double(double)
        }
        return .string(text)
    }
}
