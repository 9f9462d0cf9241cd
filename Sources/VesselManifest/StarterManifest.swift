import VesselTensor

/// The `vessel.yaml` that `vessel init` writes: every key a user is likely to fill in, with the
/// signature already read from the model.
public enum StarterManifest {
    public static func yaml(name: String, modelFile: String, format: ModelFormat, inputs: [TensorSpec], outputs: [TensorSpec]) -> String {
        func quoted(_ text: String) -> String {
            let plain =
                text.allSatisfy { $0.isLetter || $0.isNumber || "_-./".contains($0) } && !text.isEmpty
                && !["true", "false", "null", "yes", "no", "on", "off", "~"].contains(text.lowercased()) && Int(text) == nil && Double(text) == nil
            if plain { return text }
            return "\"" + text.replacingAll("\\", with: "\\\\").replacingAll("\"", with: "\\\"") + "\""
        }
        /// Sizes as numbers; named dimensions by name when the name is an identifier, else -1.
        func dimension(_ dim: Dim) -> String {
            switch dim {
            case .fixed(let size): return String(size)
            case .dynamic(let name?)
            where name.first.map({ $0.isLetter || $0 == "_" }) == true
                && name.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" }):
                return name
            case .dynamic: return "-1"
            }
        }
        func tensors(_ specs: [TensorSpec]) -> String {
            specs.map { spec in
                "    - name: \(quoted(spec.name))\n      dtype: \(spec.dtype.rawValue)\n      shape: [\(spec.shape.map(dimension).joined(separator: ", "))]"
            }.joined(separator: "\n")
        }
        return """
            # Written by `vessel init`; every key is documented in docs/manifest.md.
            schemaVersion: 1
            name: \(quoted(name))
            version: 0.1.0
            # description: what the model does, in one line
            # authors: [you@example.com]
            # license: Apache-2.0

            model:
              format: \(format.rawValue)
              file: \(quoted(modelFile))

            # Further files to pack, each with a role: weights, weight-config, code, doc, dataset.
            files: []

            signature:
              inputs:
            \(tensors(inputs))
              outputs:
            \(tensors(outputs))

            # Bundled examples are run by `vessel pack` and as the server's warm-up:
            # examples:
            #   - name: first
            #     inputs: {\(inputs.first.map { quoted($0.name) } ?? "x"): [...]}
            #     outputs: {\(outputs.first.map { quoted($0.name) } ?? "y"): [...]}

            runtime:
              backend: \(format.defaultBackend.rawValue)

            """
    }
}

extension String {
    func replacingAll(_ target: String, with replacement: String) -> String {
        split(separator: target, omittingEmptySubsequences: false).joined(separator: replacement)
    }
}
