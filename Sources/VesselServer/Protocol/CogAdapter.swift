import VesselJSON
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import VesselManifest
import VesselTensor

/// Cog's HTTP prediction API, so Replicate-style clients work unchanged: `POST /predictions`
/// with `{"input": {name: value}}` — files as `data:` URIs, one item rather than a batch — and
/// `{"status": "succeeded", "output": …}` back; `GET /health-check`.
///
/// An input whose value has one dimension fewer than its served shape and whose first
/// dimension is the batch gets a batch of one; outputs of that one-item batch lose it again. A
/// model with one output answers its value, several an object of them.
enum CogAdapter {
    /// Cog answers a bad input with 422 and FastAPI's `detail` list; so does this.
    static func validationError(_ message: String, input: String?) -> String {
        let location = ["\"body\"", "\"input\""] + (input.map { [OIPCodec.quote($0)] } ?? [])
        return "{\"detail\":[{\"loc\":[\(location.joined(separator: ","))],\"msg\":\(OIPCodec.quote(message)),\"type\":\"value_error\"}]}"
    }

    /// The request's `id` (echoed) and the model's inputs.
    static func inputs(_ body: [UInt8], signature: Signature) throws(RequestError) -> (id: String?, inputs: [String: Tensor]) {
        let parsed: JSONValue
        do { parsed = try FastJSON.parse(body[...]) } catch {
            throw RequestError(422, "the request body is not valid JSON (byte \(error.offset): \(error.reason))")
        }
        guard case .object = parsed, let input = parsed["input"], case .object(let fields) = input else {
            throw RequestError(422, "the request body must be {\"input\": {name: value, …}}")
        }
        var result: [String: Tensor] = [:]
        for (name, value) in fields {
            guard let spec = signature.input(named: name) else {
                throw RequestError(422, "unknown input `\(name)`; the model's inputs are \(signature.inputs.map(\.name).joined(separator: ", "))")
            }
            var shape: [Int] = []
            var level = value
            walk: while true {
                switch level {
                case .array(let items):
                    shape.append(items.count)
                    guard let first = items.first else { break walk }
                    level = first
                case .numbers(let values):
                    shape.append(values.count)
                    break walk
                default: break walk
                }
            }
            var data = value
            // One item where the model takes a batch: a batch of one.
            if shape.count == spec.shape.count - 1, case .dynamic = spec.shape.first {
                shape.insert(1, at: 0)
                data = .array([value])
            }
            guard let count = Tensor.checkedCount(of: shape), Tensor.allocationProblem(spec.dtype, shape) == nil else {
                throw RequestError(422, "input `\(name)`: shape \(shape) is too large")
            }
            result[name] = try OIPCodec.tensor(data, dtype: spec.dtype, shape: shape, count: count, name: name)
        }
        for spec in signature.inputs where result[spec.name] == nil && !spec.isOptional {
            throw RequestError(422, "missing input `\(spec.name)`")
        }
        return (parsed["id"]?.string, result)
    }

    /// `{"id", "status": "succeeded", "output", "metrics": {"predict_time"}, …}`.
    static func response(id: String?, outputs: [(String, Tensor)], signature: Signature, seconds: Double) -> String {
        func value(_ name: String, _ tensor: Tensor) -> String {
            var item = tensor
            if let spec = signature.output(named: name), case .dynamic? = spec.shape.first, tensor.rank >= 1, tensor.shape[0] == 1 {
                item = item.reshaped(Array(tensor.shape.dropFirst()))
            }
            return OIPCodec.nestedJSON(item)
        }
        let output =
            outputs.count == 1
            ? value(outputs[0].0, outputs[0].1)
            : "{" + outputs.map { "\(OIPCodec.quote($0.0)):\(value($0.0, $0.1))" }.joined(separator: ",") + "}"
        return "{\"id\":\(id.map(OIPCodec.quote) ?? "null"),\"status\":\"succeeded\",\"output\":\(output),\"error\":null,\"logs\":\"\","
            + "\"metrics\":{\"predict_time\":\(OIPCodec.number(seconds))}}"
    }

    static func failed(id: String?, _ message: String) -> String {
        "{\"id\":\(id.map(OIPCodec.quote) ?? "null"),\"status\":\"failed\",\"output\":null,\"error\":\(OIPCodec.quote(message)),\"logs\":\"\"}"
    }
}
