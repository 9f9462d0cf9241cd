import VesselTensor
import VesselManifest
import VesselProcessing
import Yams

/// The declared pre- and post-processing steps Vessel knows. Each step names the tensor it works
/// on (`input:` before the model, `output:` after it) plus its own parameters.
struct StepSchema: Sendable {
    enum Stage: String, Sendable { case pre = "preprocess", post = "postprocess" }

    enum Kind: Sendable {
        case string, number, int, bool, numbers, ints, dtype, file
        case oneOf([String])
        /// The `columns` step's list: a name, or `{name, categories, encode, fill}`.
        case columns
    }

    let type: String
    let stages: Set<Stage>
    let required: [String: Kind]
    let optional: [String: Kind]

    static let all: [StepSchema] = [
        StepSchema(type: "cast", stages: [.pre, .post], required: ["dtype": .dtype], optional: [:]),
        StepSchema(type: "normalize", stages: [.pre], required: ["mean": .numbers, "std": .numbers], optional: ["axis": .int]),
        StepSchema(type: "scale", stages: [.pre, .post], required: ["factor": .number], optional: ["offset": .number]),
        StepSchema(type: "reshape", stages: [.pre], required: ["shape": .ints], optional: [:]),
        StepSchema(type: "transpose", stages: [.pre], required: ["perm": .ints], optional: [:]),
        StepSchema(type: "clip", stages: [.pre, .post], required: [:], optional: ["min": .number, "max": .number]),
        StepSchema(
            type: "image", stages: [.pre], required: ["size": .ints],
            optional: [
                "layout": .oneOf(["NCHW", "NHWC"]), "color": .oneOf(["rgb", "bgr", "gray"]), "scale": .number,
                "resize": .oneOf(["stretch", "center_crop", "letterbox"]), "shorter_side": .int,
                "filter": .oneOf(["nearest", "bilinear", "bicubic", "lanczos"]), "pad": .int
            ]),
        StepSchema(
            type: "tokenize", stages: [.pre], required: ["file": .file],
            optional: [
                "text": .string, "pair": .string, "max_length": .int, "truncate": .bool, "padding": .oneOf(["longest", "tokenizer"]), "attention_mask": .string,
                "token_type_ids": .string
            ]),
        StepSchema(type: "columns", stages: [.pre], required: ["columns": .columns], optional: [:]),
        StepSchema(type: "softmax", stages: [.post], required: [:], optional: ["axis": .int]),
        StepSchema(type: "sigmoid", stages: [.post], required: [:], optional: [:]),
        StepSchema(type: "argmax", stages: [.post], required: [:], optional: ["axis": .int, "as": .string]),
        StepSchema(type: "topk", stages: [.post], required: ["k": .int], optional: ["axis": .int, "as": .string]),
        StepSchema(type: "labels", stages: [.post], required: ["file": .file], optional: ["as": .string]),
        StepSchema(type: "threshold", stages: [.post], required: ["value": .number], optional: ["as": .string]),
        StepSchema(
            type: "detections", stages: [.post], required: ["format": .oneOf(["yolov8", "yolov5"])],
            optional: ["score_threshold": .number, "iou_threshold": .number, "max_detections": .int, "class_agnostic": .bool, "as": .string]),
        StepSchema(type: "rename", stages: [.post], required: ["as": .string], optional: [:]),
        StepSchema(type: "drop", stages: [.post], required: [:], optional: [:]),
        StepSchema(
            type: "pool", stages: [.post], required: [:],
            optional: ["mode": .oneOf(["mean", "cls", "max"]), "mask": .string, "normalize": .bool, "as": .string])
    ]
}

extension ManifestReader {
    mutating func readSteps(
        _ node: Node, stage: StepSchema.Stage, signature: Signature,
        files: inout Set<String>, extra: inout [FileEntry], produced: inout Set<String>
    ) -> [ProcessingStep] {
        guard case .sequence(let sequence) = node else {
            walker.error("`\(stage.rawValue)` must be a list of steps", at: node, hint: "each step: `{type: normalize, input: x, …}`")
            return []
        }
        let tensorKey = stage == .pre ? "input" : "output"
        let known = StepSchema.all.filter { $0.stages.contains(stage) }
        var steps: [ProcessingStep] = []
        for item in sequence {
            guard case .mapping(let mapping) = item else {
                walker.error("a step must be a mapping with a `type`", at: item)
                continue
            }
            guard let typeNode = mapping["type"], let type = walker.string(typeNode, "the step `type`") else {
                if mapping["type"] == nil { walker.error("missing required key `type` in a \(stage.rawValue) step", at: item) }
                continue
            }
            guard let schema = known.first(where: { $0.type == type }) else {
                let elsewhere = StepSchema.all.contains { $0.type == type }
                walker.error(
                    elsewhere ? "step `\(type)` cannot be used in `\(stage.rawValue)`" : "unknown \(stage.rawValue) step `\(type)`",
                    at: typeNode,
                    hint: Suggestion.didYouMean(type, in: known.map(\.type)) ?? "steps here: \(known.map(\.type).joined(separator: ", "))")
                continue
            }
            let allowed = ["type", tensorKey] + schema.required.keys.sorted() + schema.optional.keys.sorted()
            guard
                let fields = walker.fields(
                    item, in: "the `\(type)` step", allowed: allowed,
                    required: [tensorKey] + schema.required.keys.sorted())
            else { continue }
            var parameters: [String: Value] = [:]
            var valid = true
            if let field = fields[tensorKey], let name = walker.string(field.value, "`\(tensorKey)`") {
                let names = stage == .pre ? signature.inputs.map(\.name) : signature.outputs.map(\.name) + produced.sorted()
                if names.contains(name) {
                    parameters[tensorKey] = .string(name)
                } else if brokenTensorNames.contains(name) {
                    valid = false
                } else {
                    walker.error(
                        "the `\(type)` step names \(tensorKey) `\(name)`, which the signature does not have", at: field.value,
                        hint: Suggestion.didYouMean(name, in: names) ?? "\(tensorKey)s: \(names.joined(separator: ", "))")
                    valid = false
                }
            }
            for (key, field) in fields where key != "type" && key != tensorKey {
                let kind = schema.required[key] ?? schema.optional[key]!
                if let value = readParameter(field.value, key: key, kind: kind, step: type, files: &files, extra: &extra) {
                    parameters[key] = value
                } else {
                    valid = false
                }
            }
            if case .string(let alias)? = parameters["as"] { produced.insert(alias) }
            let step = ProcessingStep(type: type, parameters: parameters)
            for name in ProcessingPlan.extraOutputNames(step) { produced.insert(name) }
            if valid {
                steps.append(step)
                stepNodes[stage, default: []].append(item)
            }
        }
        return steps
    }

    private mutating func readParameter(
        _ node: Node, key: String, kind: StepSchema.Kind, step: String, files: inout Set<String>, extra: inout [FileEntry]
    ) -> Value? {
        let what = "`\(key)` of the `\(step)` step"
        switch kind {
        case .string: return walker.string(node, what).map(Value.string)
        case .number: return walker.number(node, what).map(Value.double)
        case .int: return walker.int(node, what).map(Value.int)
        case .bool: return walker.bool(node, what).map(Value.bool)
        case .dtype: return readDType(node).map { .string($0.rawValue) }
        case .oneOf(let choices):
            guard let text = walker.string(node, what) else { return nil }
            guard choices.contains(text) else {
                walker.error(
                    "\(what) must be one of \(choices.joined(separator: ", ")), found `\(text)`", at: node,
                    hint: Suggestion.didYouMean(text, in: choices))
                return nil
            }
            return .string(text)
        case .numbers, .ints:
            let elements: [Node]
            if case .sequence(let sequence) = node { elements = Array(sequence) } else { elements = [node] }
            var values: [Value] = []
            for element in elements {
                if case .ints = kind {
                    guard let value = walker.int(element, "each entry of \(what)") else { return nil }
                    values.append(.int(value))
                } else {
                    guard let value = walker.number(element, "each entry of \(what)") else { return nil }
                    values.append(.double(value))
                }
            }
            return .array(values)
        case .columns:
            guard case .sequence(let items) = node, !items.isEmpty else {
                walker.error("\(what) must be a list of column names or {name, categories, encode, fill}", at: node)
                return nil
            }
            var columns: [Value] = []
            for item in items {
                if case .scalar = item {
                    guard let name = walker.string(item, "a column name") else { return nil }
                    columns.append(.string(name))
                    continue
                }
                guard let fields = walker.fields(item, in: "a column", allowed: ["name", "categories", "encode", "fill"], required: ["name"]),
                    let nameNode = fields["name"]?.value, let name = walker.string(nameNode, "a column `name`")
                else { return nil }
                var column: [String: Value] = ["name": .string(name)]
                if let node = fields["categories"]?.value {
                    guard case .sequence(let categories) = node, !categories.isEmpty else {
                        walker.error("`categories` of column `\(name)` must be a list of values", at: node)
                        return nil
                    }
                    var values: [Value] = []
                    for category in categories {
                        guard let text = walker.string(category, "a category of column `\(name)`") else { return nil }
                        values.append(.string(text))
                    }
                    column["categories"] = .array(values)
                }
                if let node = fields["encode"]?.value {
                    guard let encode = walker.string(node, "`encode`") else { return nil }
                    guard ["onehot", "index"].contains(encode), column["categories"] != nil else {
                        walker.error("`encode` of column `\(name)` must be onehot or index, and goes with `categories`", at: node)
                        return nil
                    }
                    column["encode"] = .string(encode)
                }
                if let node = fields["fill"]?.value {
                    if column["categories"] != nil {
                        guard let text = walker.string(node, "`fill`") else { return nil }
                        column["fill"] = .string(text)
                    } else {
                        guard let number = walker.number(node, "`fill`") else { return nil }
                        column["fill"] = .double(number)
                    }
                }
                columns.append(.object(column))
            }
            return .array(columns)
        case .file:
            guard let path = checkPath(node, what: what) else { return nil }
            if !covers(files, path) {
                files.insert(path)
                extra.append(FileEntry(path: path, role: .weightConfig, description: "used by the \(step) step"))
            }
            return .string(path)
        }
    }

    /// Whether `path` is already packed, as itself or inside a listed directory.
    func covers(_ files: Set<String>, _ path: String) -> Bool {
        files.contains(path) || files.contains { path.hasPrefix($0 + "/") }
    }
}
