public import VesselManifest
public import VesselTensor

/// A model's declared `preprocess` and `postprocess` steps, compiled against its signature into
/// a typed plan: each step's tensor, dtype and shape checked against the next, and the *served*
/// signature (what clients send and get) derived from the model's own.
///
/// Every entry runs the same plan — `vessel run`, `vessel test`, `pack`'s examples, `vessel
/// serve` (every transport) and the image's runtime — because ``LoadedModel`` wraps its backend
/// in it; nothing else runs steps.
///
/// Pre steps turn what a client sends into what the model takes, so the served input is derived
/// backwards from the model's input; post steps run forwards from the model's outputs. A post
/// step with `as:` writes a new output and keeps the one it read; without it, it replaces it.
public struct ProcessingPlan: Sendable {
    /// What clients send and get.
    public let served: Signature
    /// The model's own graph signature, as the manifest declares it.
    public let model: Signature
    let pre: [CompiledStep]
    let post: [CompiledStep]
    /// The directory the steps' files were read from; nil until ``loadingFiles(from:)``.
    let filesLoaded: Bool

    public var isEmpty: Bool { pre.isEmpty && post.isEmpty }

    /// Whether a step decodes images: their cost follows their bytes and pixels, not the
    /// request's element count, so a server must not run such requests on an event loop.
    public var decodesImages: Bool { pre.contains { if case .image = $0.operation { true } else { false } } }

    /// Compiles the steps; throws the first step that does not fit (its stage and index name it).
    /// `maxImagePixels` bounds each image an `image` step decodes (`serving.max_image_pixels`),
    /// checked from the file's header before decoding.
    public init(
        signature: Signature, preprocess: [ProcessingStep], postprocess: [ProcessingStep],
        maxImagePixels: Int? = nil
    ) throws(ProcessingError) {
        model = signature
        var pre: [CompiledStep] = []
        for (index, step) in preprocess.enumerated() {
            var compiled = try CompiledStep(step, stage: .pre, index: index)
            if case .image(var image) = compiled.operation, let maxImagePixels {
                image.maxPixels = maxImagePixels
                compiled.operation = .image(image)
            }
            pre.append(compiled)
        }
        var post: [CompiledStep] = []
        for (index, step) in postprocess.enumerated() { post.append(try CompiledStep(step, stage: .post, index: index)) }

        // Inputs: backwards from the model's, through the pre steps in reverse.
        var inputs = signature.inputs
        for index in pre.indices.reversed() {
            let step = pre[index]
            guard let position = inputs.firstIndex(where: { $0.name == step.tensor }) else {
                throw step.error("names input `\(step.tensor)`, which the signature does not have")
            }
            if case .tokenize(var spec) = step.operation {
                // The mask and type ids default to the model inputs of those names.
                let names = Set(inputs.map(\.name))
                if spec.attentionMask == nil, names.contains("attention_mask"), step.tensor != "attention_mask" { spec.attentionMask = "attention_mask" }
                if spec.tokenTypeIDs == nil, names.contains("token_type_ids"), step.tensor != "token_type_ids" { spec.tokenTypeIDs = "token_type_ids" }
                let served: [TensorSpec]
                do { served = try spec.served(ids: inputs[position], inputs: inputs) } catch { throw step.error(error.message) }
                pre[index].operation = .tokenize(spec)
                let written = Set([step.tensor, spec.attentionMask, spec.tokenTypeIDs].compactMap { $0 })
                for name in served.map(\.name) where !written.contains(name) && inputs.contains(where: { $0.name == name }) {
                    throw step.error("serves `\(name)`, which is already a model input; name the text input with `text:`")
                }
                inputs.removeAll { written.contains($0.name) && $0.name != step.tensor }
                let at = inputs.firstIndex { $0.name == step.tensor }!
                inputs.replaceSubrange(at...at, with: served)
                continue
            }
            // What a `columns` step assembles is what the next step (or the model) takes.
            pre[index].assembledDType = inputs[position].dtype
            let served = try step.servedInputs(for: inputs[position])
            for spec in served where spec.name != inputs[position].name && inputs.contains(where: { $0.name == spec.name }) {
                throw step.error("column `\(spec.name)` has the name of another input")
            }
            inputs.replaceSubrange(position...position, with: served)
        }
        // Outputs: forwards from the model's.
        var outputs = signature.outputs
        for position in post.indices {
            let step = post[position]
            guard let source = outputs.firstIndex(where: { $0.name == step.tensor }) else {
                throw step.error("names output `\(step.tensor)`, which neither the model nor an earlier step makes")
            }
            if case .drop = step.operation {
                outputs.remove(at: source)
                guard !outputs.isEmpty else { throw step.error("drops the last output; clients would get nothing") }
                continue
            }
            if case .rename = step.operation {
                guard !outputs.contains(where: { $0.name == step.result }) else {
                    throw step.error("renames to `\(step.result)`, which is already an output; choose another `as`")
                }
                outputs[source].name = step.result
                continue
            }
            for spec in try post[position].producedOutputs(from: outputs[source]) {
                if spec.name == step.tensor {
                    outputs[source] = spec
                } else if outputs.contains(where: { $0.name == spec.name }) {
                    throw step.error("writes `\(spec.name)`, which is already an output; choose another `as`")
                } else {
                    outputs.append(spec)
                }
            }
        }
        self.pre = pre
        self.post = post
        filesLoaded =
            !post.contains { if case .labels = $0.operation { true } else { false } }
            && !pre.contains { if case .tokenize = $0.operation { true } else { false } }
        served = Signature(inputs: inputs, outputs: outputs)
    }

    /// A manifest's steps against its own signature, each image bounded by its
    /// `serving.max_image_pixels`.
    public init(manifest: Manifest) throws(ProcessingError) {
        try self.init(
            signature: manifest.signature, preprocess: manifest.preprocess, postprocess: manifest.postprocess,
            maxImagePixels: manifest.serving.maxImagePixels)
    }

    private init(copying plan: ProcessingPlan, pre: [CompiledStep], post: [CompiledStep]) {
        served = plan.served
        model = plan.model
        self.pre = pre
        self.post = post
        filesLoaded = true
    }

    /// The largest file a step reads: a tokenizer.json of a 250,000-token vocabulary is 17 MB.
    public static let fileLimit: Int64 = 64 << 20

    /// The plan with the files its steps name (label lists, tokenizers) read through `read`, which gets the
    /// path as the manifest gives it and returns the file's bytes.
    public func loadingFiles(_ read: (String) throws -> [UInt8]) throws -> ProcessingPlan {
        var pre = self.pre
        for position in pre.indices {
            guard case .tokenize(var spec) = pre[position].operation else { continue }
            let bytes: [UInt8]
            do { bytes = try read(spec.file) } catch { throw pre[position].error("cannot read \(spec.file): \(error)") }
            do { spec.tokenizer = try Tokenizer(json: bytes) } catch { throw pre[position].error("\(spec.file): \(error)") }
            if spec.truncate == true, spec.limit == nil {
                throw pre[position].error("`truncate: true` needs `max_length` (or a tokenizer or model that sets one)")
            }
            if let limit = spec.limit, let fixed = spec.fixedLength, limit > fixed {
                throw pre[position].error("\(spec.file) truncates to \(limit) tokens, but the model takes sequences of \(fixed); set `max_length`")
            }
            pre[position].operation = .tokenize(spec)
        }
        var post = self.post
        for position in post.indices {
            guard case .labels(let file, _) = post[position].operation else { continue }
            let bytes: [UInt8]
            do { bytes = try read(file) } catch { throw post[position].error("cannot read \(file): \(error)") }
            // Lines split on bytes: as Characters, "\r\n" is one and would not split on "\n".
            var names = bytes.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).map {
                String(decoding: $0.last == UInt8(ascii: "\r") ? $0.dropLast() : $0, as: UTF8.self)
            }
            while names.last == "" { names.removeLast() }
            guard !names.isEmpty else { throw post[position].error("\(file) has no labels (one per line)") }
            if let classes = post[position].classes, classes != names.count {
                throw post[position].error("\(file) has \(names.count) labels, but `\(post[position].tensor)` scores \(classes) classes")
            }
            post[position].operation = .labels(file: file, names: names)
        }
        return ProcessingPlan(copying: self, pre: pre, post: post)
    }

    /// What a client sent, as the model takes it. Errors are the client's (a 400).
    public func preprocess(_ inputs: [String: Tensor]) throws(ProcessingError) -> [String: Tensor] {
        guard !pre.isEmpty else { return inputs }
        precondition(filesLoaded, "ProcessingPlan.loadingFiles must run before preprocess")
        var values = inputs
        for step in pre {
            if case .tokenize(let spec) = step.operation {
                let written: [String: Tensor]
                do { written = try spec.run(values, ids: step.tensor) } catch { throw step.error(error.message) }
                values[spec.text] = nil
                if let pair = spec.pair { values[pair] = nil }
                values.merge(written) { $1 }
                continue
            }
            if case .columns(let columns) = step.operation {
                let assembled = try step.assemble(values, dtype: step.assembledDType)
                for column in columns { values[column.name] = nil }
                values[step.tensor] = assembled
                continue
            }
            guard let tensor = values[step.tensor] else { throw step.error("input `\(step.tensor)` is missing") }
            values[step.tensor] = try step.apply(tensor).0
        }
        return values
    }

    /// What the model returned, as clients get it; `inputs` are what the model was given (a
    /// `pool` step reads the attention mask there). Errors are the model's or the manifest's (a 500).
    public func postprocess(_ outputs: [String: Tensor], inputs: [String: Tensor] = [:]) throws(ProcessingError) -> [String: Tensor] {
        guard !post.isEmpty else { return outputs }
        precondition(filesLoaded, "ProcessingPlan.loadingFiles must run before postprocess")
        var values = outputs
        for step in post {
            guard let tensor = values[step.tensor] else { throw step.error("the model did not produce `\(step.tensor)`") }
            switch step.operation {
            case .drop:
                values[step.tensor] = nil
            case .rename:
                values[step.result] = tensor
                values[step.tensor] = nil
            case .detections(let detections):
                do {
                    let (boxes, scores, classes, count) = try detections.run(tensor)
                    values[step.result] = boxes
                    values[step.result + "_scores"] = scores
                    values[step.result + "_classes"] = classes
                    values[step.result + "_count"] = count
                } catch {
                    throw step.error(error.message)
                }
            case .pool(let pool):
                do { values[step.result] = try pool.run(tensor, mask: inputs[pool.mask]) } catch { throw step.error(error.message) }
            default:
                let (result, scores) = try step.apply(tensor)
                values[step.result] = result
                if let name = step.scoresName, let scores { values[name] = scores }
            }
        }
        return values
    }

    /// The names of the outputs a post step writes besides `as` (top-k scores), for the
    /// manifest parser's list of names examples may expect.
    public static func extraOutputNames(_ step: ProcessingStep) -> [String] {
        guard case .string(let name)? = step.parameters["as"] ?? step.parameters["output"] else { return [] }
        switch step.type {
        case "topk": return [name + "_scores"]
        case "detections": return ["_scores", "_classes", "_count"].map { name + $0 }
        default: return []
        }
    }
}

/// A step that does not fit, or a tensor a step cannot take.
public struct ProcessingError: Error, Sendable, CustomStringConvertible {
    public enum Stage: String, Sendable { case pre = "preprocess", post = "postprocess" }
    public var stage: Stage
    /// The step's position in its list, from 0.
    public var index: Int
    public var type: String
    public var message: String

    public var description: String { "\(stage.rawValue) step \(index + 1) (`\(type)`): \(message)" }
}
