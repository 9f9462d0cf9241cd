#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
public import VesselTensor

/// A node's attributes, decoded once at load time.
public struct Attributes: Sendable {
    public enum Value: Sendable {
        case float(Float), int(Int), string(String), tensor(Tensor), graph(Graph)
        case floats([Float]), ints([Int]), strings([String]), tensors([Tensor]), graphs([Graph])
    }

    public var values: [String: Value]
    let node: String
    let opType: String

    func invalid(_ reason: String) -> ONNXError { .invalidNode(node: node, opType: opType, reason: reason) }

    public func has(_ name: String) -> Bool { values[name] != nil }

    public func int(_ name: String) -> Int? {
        if case .int(let value)? = values[name] { return value }
        return nil
    }

    public func int(_ name: String, default value: Int) -> Int { int(name) ?? value }

    public func float(_ name: String) -> Float? {
        switch values[name] {
        case .float(let value)?: value
        case .int(let value)?: Float(value)
        default: nil
        }
    }

    public func float(_ name: String, default value: Float) -> Float { float(name) ?? value }

    public func string(_ name: String) -> String? {
        if case .string(let value)? = values[name] { return value }
        return nil
    }

    public func string(_ name: String, default value: String) -> String { string(name) ?? value }

    public func ints(_ name: String) -> [Int]? {
        switch values[name] {
        case .ints(let value)?: value
        case .int(let value)?: [value]
        default: nil
        }
    }

    public func floats(_ name: String) -> [Float]? {
        switch values[name] {
        case .floats(let value)?: value
        case .float(let value)?: [value]
        default: nil
        }
    }

    public func strings(_ name: String) -> [String]? {
        switch values[name] {
        case .strings(let value)?: value
        case .string(let value)?: [value]
        default: nil
        }
    }

    public func tensor(_ name: String) -> Tensor? {
        if case .tensor(let value)? = values[name] { return value }
        return nil
    }

    public func graph(_ name: String) -> Graph? {
        if case .graph(let value)? = values[name] { return value }
        return nil
    }

    public func required<T>(_ name: String, _ read: (String) -> T?) throws -> T {
        guard let value = read(name) else { throw invalid("missing attribute `\(name)`") }
        return value
    }
}
