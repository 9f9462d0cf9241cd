import VesselJSON
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import VesselManifest
import VesselModel
import VesselTensor

/// MLflow's scoring protocol, so MLflow clients switch without code changes: `POST /invocations`
/// with `dataframe_split`, `dataframe_records`, `instances` or `inputs`; `{"predictions": …}`
/// back. Dataframe columns become inputs by name (one column per input), or, for a model with
/// one [batch, C] input, its C features in column order.
enum MLflowAdapter {
    /// The model's inputs from an MLflow request body.
    static func inputs(_ body: [UInt8], signature: Signature) throws(RequestError) -> [String: Tensor] {
        let parsed: JSONValue
        do { parsed = try FastJSON.parse(body[...]) } catch {
            throw RequestError(400, "the request body is not valid JSON (byte \(error.offset): \(error.reason))")
        }
        guard let object = parsed.foundation as? [String: Any] else {
            throw RequestError(400, "the request body must be a JSON object with dataframe_split, dataframe_records, instances or inputs")
        }
        let formats = ["dataframe_split", "dataframe_records", "instances", "inputs"].filter { object[$0] != nil }
        guard formats.count == 1, let format = formats.first else {
            throw RequestError(
                400,
                "give exactly one of dataframe_split, dataframe_records, instances and inputs (got \(formats.isEmpty ? "none" : formats.joined(separator: ", ")))"
            )
        }
        switch format {
        case "dataframe_split":
            guard let split = object[format] as? [String: Any], let rows = split["data"] as? [[Any]] else {
                throw RequestError(400, "dataframe_split needs `data`, a list of rows (and `columns`)")
            }
            let columns = (split["columns"] as? [String]) ?? signature.inputs.map(\.name)
            return try table(columns: columns, rows: rows, signature: signature)
        case "dataframe_records":
            guard let records = object[format] as? [[String: Any]] else { throw RequestError(400, "dataframe_records must be a list of objects") }
            return try recordsTable(records, signature: signature)
        case "instances":
            if let records = object[format] as? [[String: Any]] { return try recordsTable(records, signature: signature) }
            guard let rows = object[format] as? [Any] else { throw RequestError(400, "instances must be a list") }
            return try tensorInputs(["_": rows], signature: signature)
        default:
            if let named = object[format] as? [String: Any] { return try tensorInputs(named, signature: signature) }
            guard let rows = object[format] as? [Any] else { throw RequestError(400, "inputs must be a list or an object of named tensors") }
            return try tensorInputs(["_": rows], signature: signature)
        }
    }

    static func recordsTable(_ records: [[String: Any]], signature: Signature) throws(RequestError) -> [String: Tensor] {
        var columns: [String] = []
        for record in records { for key in record.keys.sorted() where !columns.contains(key) { columns.append(key) } }
        // One input of [batch, C]: keep the model's feature order when config names it.
        let rows = try records.enumerated().map { index, record throws(RequestError) -> [Any] in
            try columns.map { column throws(RequestError) -> Any in
                guard let value = record[column] else { throw RequestError(400, "record \(index) has no `\(column)`") }
                return value
            }
        }
        return try table(columns: columns, rows: rows, signature: signature)
    }

    /// Columns to inputs: by name when every column names an input, else all columns as the
    /// features of a single [batch, C] input.
    static func table(columns: [String], rows: [[Any]], signature: Signature) throws(RequestError) -> [String: Tensor] {
        let names = signature.inputs.map(\.name)
        for (index, row) in rows.enumerated() where row.count != columns.count {
            throw RequestError(400, "row \(index) has \(row.count) values for \(columns.count) columns")
        }
        if Set(columns).isSuperset(of: names), !names.isEmpty {
            var result: [String: Tensor] = [:]
            for spec in signature.inputs {
                let column = columns.firstIndex(of: spec.name)!
                let shape = spec.shape.count >= 2 ? [rows.count, 1] : [rows.count]
                result[spec.name] = try OIPCodec.jsonTensor(rows.map { $0[column] }, dtype: spec.dtype, shape: shape, count: rows.count, name: spec.name)
            }
            return result
        }
        guard signature.inputs.count == 1, let spec = signature.inputs.first, spec.shape.count == 2 else {
            throw RequestError(400, "columns \(columns) do not name the model's inputs (\(names.joined(separator: ", ")))")
        }
        if case .fixed(let width) = spec.shape[1], width != columns.count {
            throw RequestError(400, "input `\(spec.name)` takes \(width) features per row, the dataframe has \(columns.count) columns")
        }
        return [
            spec.name: try OIPCodec.jsonTensor(
                rows as [Any], dtype: spec.dtype, shape: [rows.count, columns.count],
                count: rows.count * columns.count, name: spec.name)
        ]
    }

    /// Named (or, for a single-input model, unnamed) nested arrays as tensors.
    static func tensorInputs(_ named: [String: Any], signature: Signature) throws(RequestError) -> [String: Tensor] {
        var result: [String: Tensor] = [:]
        for (key, data) in named {
            let spec: TensorSpec
            if key == "_" {
                guard signature.inputs.count == 1 else {
                    throw RequestError(
                        400, "the model has \(signature.inputs.count) inputs; name them: {\"inputs\": {\"\(signature.inputs.first?.name ?? "x")\": …}}")
                }
                spec = signature.inputs[0]
            } else {
                guard let found = signature.inputs.first(where: { $0.name == key }) else {
                    throw RequestError(400, "unknown input `\(key)`; the model's inputs are \(signature.inputs.map(\.name).joined(separator: ", "))")
                }
                spec = found
            }
            var shape: [Int] = []
            var level: Any = data
            while let list = level as? [Any] {
                shape.append(list.count)
                guard let first = list.first else { break }
                level = first
            }
            result[spec.name] = try OIPCodec.jsonTensor(data, dtype: spec.dtype, shape: shape, count: shape.reduce(1, *), name: spec.name)
        }
        return result
    }

    /// `{"predictions": [...]}` for one output, `{"predictions": {"name": [...], ...}}` for several.
    static func response(_ outputs: [(String, Tensor)]) -> String {
        if outputs.count == 1 { return "{\"predictions\":\(OIPCodec.nestedJSON(outputs[0].1))}" }
        return "{\"predictions\":{" + outputs.map { "\(OIPCodec.quote($0.0)):\(OIPCodec.nestedJSON($0.1))" }.joined(separator: ",") + "}}"
    }
}
