import Foundation
import VesselManifest
import Yams

/// The `serving` and `runtime` sections, and what the Python backend needs of the manifest.
extension ManifestReader {
    mutating func readServing(_ node: Node) -> ServingSettings {
        let keys = [
            "max_batch_size", "max_delay_ms", "max_concurrency", "max_queue", "timeout_ms", "max_body_bytes", "allow_nan",
            "max_image_pixels", "replicas", "resources"
        ]
        var settings = ServingSettings()
        guard let fields = walker.fields(node, in: "`serving`", allowed: keys) else { return settings }
        if let node = fields["max_batch_size"]?.value, let value = walker.int(node, "`serving.max_batch_size`", minimum: 1) { settings.maxBatchSize = value }
        if let node = fields["max_delay_ms"]?.value, let value = walker.number(node, "`serving.max_delay_ms`", minimum: 0) {
            settings.maxDelayMilliseconds = value
        }
        if let node = fields["max_concurrency"]?.value, let value = walker.int(node, "`serving.max_concurrency`", minimum: 1) {
            settings.maxConcurrency = value
        }
        if let node = fields["max_queue"]?.value, let value = walker.int(node, "`serving.max_queue`", minimum: 0) { settings.maxQueue = value }
        if let node = fields["timeout_ms"]?.value, let value = walker.number(node, "`serving.timeout_ms`", minimum: 1) { settings.timeoutMilliseconds = value }
        if let node = fields["max_body_bytes"]?.value, let value = walker.int(node, "`serving.max_body_bytes`", minimum: 1) { settings.maxBodyBytes = value }
        if let node = fields["allow_nan"]?.value, let value = walker.bool(node, "`serving.allow_nan`") { settings.allowNaN = value }
        if let node = fields["max_image_pixels"]?.value, let value = walker.int(node, "`serving.max_image_pixels`", minimum: 1) {
            settings.maxImagePixels = value
        }
        if let node = fields["replicas"]?.value, let value = walker.int(node, "`serving.replicas`", minimum: 1) { settings.replicas = value }
        if let node = fields["resources"]?.value,
            let resources = walker.fields(node, in: "`serving.resources`", allowed: ["cpu", "memory", "cpu_limit", "memory_limit"])
        {
            func quantity(_ key: String) -> String? {
                guard let node = resources[key]?.value else { return nil }
                let what = "`serving.resources.\(key)`"
                let text: String?
                if case .scalar(let scalar) = node, Int(scalar.string) != nil || Double(scalar.string) != nil {
                    text = scalar.string
                } else {
                    text = walker.string(node, what)
                }
                guard let text else { return nil }
                guard ResourceQuantity.isValid(text) else {
                    walker.error(
                        "\(what) `\(text)` is not a Kubernetes quantity", at: node,
                        hint: key.hasPrefix("cpu") ? "cores, e.g. 1, 0.5 or 500m" : "bytes with a suffix, e.g. 512Mi or 2Gi")
                    return nil
                }
                return text
            }
            settings.resources = ResourceRequirements(
                cpu: quantity("cpu"), memory: quantity("memory"),
                cpuLimit: quantity("cpu_limit"), memoryLimit: quantity("memory_limit"))
        }
        return settings
    }

    mutating func readRuntime(_ node: Node?, format: ModelFormat?) -> RuntimeSpec {
        var runtime = RuntimeSpec(backend: format?.defaultBackend ?? .onnx, python: nil, requirements: [], system: [])
        guard let node,
            let fields = walker.fields(
                node, in: "`runtime`", allowed: ["backend", "python", "requirements", "system", "predictor", "max_worker_memory", "trusted_types"])
        else {
            return runtime
        }
        if let field = fields["backend"], let text = walker.string(field.value, "`runtime.backend`") {
            if let backend = RuntimeSpec.Backend(rawValue: text) {
                runtime.backend = backend
                if backend == .onnx, let format, format != .onnx {
                    walker.error(
                        "the onnx backend cannot run a `\(format.rawValue)` model", at: field.value,
                        hint: "use `backend: python`, or export the model to ONNX")
                }
            } else {
                let names = RuntimeSpec.Backend.allCases.map(\.rawValue)
                walker.error(
                    "unknown backend `\(text)`", at: field.value,
                    hint: Suggestion.didYouMean(text, in: names) ?? "backends: \(names.joined(separator: ", "))")
            }
        }
        if let field = fields["python"], let text = walker.string(field.value, "`runtime.python`") {
            let parts = text.split(separator: ".", omittingEmptySubsequences: false)
            if parts.count < 2 || parts.count > 3 || parts.contains(where: { $0.isEmpty || !$0.allSatisfy(\.isASCII) || Int($0) == nil }) {
                walker.error("`runtime.python` `\(text)` is not a Python version", at: field.value, hint: "major.minor, such as \"3.11\"")
            } else {
                runtime.python = text
            }
        }
        if let field = fields["requirements"] {
            runtime.requirements = walker.strings(field.value, "`runtime.requirements`")
            if case .sequence(let items) = field.value {
                for (item, requirement) in zip(items, runtime.requirements) where !Self.isPinned(requirement) {
                    walker.warning(
                        "requirement `\(requirement)` is not pinned", at: item,
                        hint: "pin an exact version (`name==1.2.3`) so the artifact runs the same everywhere")
                }
            }
        }
        if let field = fields["system"] {
            walker.error(
                "`runtime.system` is not supported yet: no vessel image installs Debian packages for a model", at: field.key,
                hint: "remove it; shared libraries the model's Python packages need come with their wheels")
        }
        if let field = fields["predictor"], let text = walker.nonEmptyString(field.value, "`runtime.predictor`") {
            let colon = text.lastIndex(of: ":")
            let path = colon.map { String(text[..<$0]) } ?? ""
            let className = colon.map { String(text[text.index(after: $0)...]) } ?? ""
            if path.isEmpty || className.isEmpty || !path.hasSuffix(".py") || !className.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" }) {
                walker.error(
                    "`runtime.predictor` `\(text)` is not `file.py:ClassName`", at: field.value,
                    hint: "the Python file (relative to vessel.yaml) and the class in it, such as `predict.py:Predictor`")
            } else if runtime.backend != .python {
                walker.error("`runtime.predictor` needs `backend: python`", at: field.key)
            } else if let checked = checkPath(field.value, what: "`runtime.predictor`", allowDirectory: false, text: path) {
                runtime.predictor = checked + ":" + className
            }
        }
        if let field = fields["trusted_types"] {
            runtime.trustedTypes = walker.strings(field.value, "`runtime.trusted_types`")
            if format != .skops { walker.error("`runtime.trusted_types` applies to `skops` models only", at: field.key) }
        }
        if let field = fields["max_worker_memory"] {
            let text: String?
            if case .scalar(let scalar) = field.value { text = scalar.string } else { text = walker.string(field.value, "`runtime.max_worker_memory`") }
            if let text {
                if runtime.backend != .python {
                    walker.error("`runtime.max_worker_memory` needs `backend: python`", at: field.key)
                } else if let bytes = ResourceQuantity.bytes(text) {
                    runtime.maxWorkerMemory = bytes
                } else {
                    walker.error(
                        "`runtime.max_worker_memory` `\(text)` is not a memory quantity", at: field.value, hint: "bytes with a suffix, e.g. 512Mi or 2Gi")
                }
            }
        }
        if runtime.backend == .onnx, !runtime.requirements.isEmpty, let field = fields["requirements"] {
            walker.warning("`runtime.requirements` is ignored by the onnx backend", at: field.key)
        }
        return runtime
    }

    /// What the Python backend needs to load the model: its own code, or a ready-made loader
    /// whose signature it can serve (one input, the features; `predict` then `predict_proba`).
    mutating func checkPythonLoader(_ runtime: RuntimeSpec, model: ModelSpec, signature: Signature?, at node: Node?) {
        guard runtime.backend == .python, runtime.predictor == nil else { return }
        guard model.format.hasReadyMadePythonLoader else {
            walker.error(
                "the python backend has no ready-made loader for `\(model.format.rawValue)` models yet", at: node,
                hint: "name your own loading code with `runtime.predictor: predict.py:Predictor` (a class with setup() and predict()); "
                    + "joblib, pickle, skops, Keras and TorchScript files, SavedModel and MLflow model directories load without code")
            return
        }
        // MLflow, SavedModel and Keras models take and give their own named tensors.
        guard let signature, [.joblib, .pickle, .skops].contains(model.format) else { return }
        if signature.inputs.count != 1 || !(1...2).contains(signature.outputs.count) {
            walker.error(
                "a `\(model.format.rawValue)` model without a predictor takes one input (the feature matrix) and gives one or two outputs "
                    + "(predict(), then predict_proba()); this signature has \(signature.inputs.count) and \(signature.outputs.count)", at: node,
                hint: "write a `runtime.predictor` for any other shape")
        }
    }

    static func isPinned(_ requirement: String) -> Bool {
        requirement.contains("==") || requirement.contains(" @ ")
    }
}
