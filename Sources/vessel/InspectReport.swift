import Foundation
import VesselArtifact
import VesselImage
import VesselTensor
import VesselManifest
import VesselManifestYAML
import VesselProcessing
import VesselStore

/// What `vessel inspect` shows, as text or JSON.
struct InspectReport: Encodable {
    struct Tensor: Encodable, Equatable {
        var name: String
        var dtype: String
        var shape: [String]
        var description: String?
    }

    struct File: Encodable {
        var path: String
        var role: String
        var mediaType: String
        var size: Int64
        var digest: String
    }

    var reference: String
    var digest: String
    var artifactType: String
    var name: String
    var version: String
    var description: String?
    var authors: [String]
    var license: String?
    var tags: [String]
    var format: String
    var modelFile: String
    var backend: String
    /// The served signature: what clients send and get, after the processing steps.
    var inputs: [Tensor]
    var outputs: [Tensor]
    /// The model's own graph signature (the same as the served one without processing steps).
    var modelInputs: [Tensor]
    var modelOutputs: [Tensor]
    var preprocess: [String]
    var postprocess: [String]
    var examples: [String]
    var files: [File]
    var totalSize: Int64
    /// Referrers in the store: signatures, provenance, SBOM.
    var attached: [Attached] = []

    struct Attached: Encodable {
        var kind: String
        var digest: String
        var detail: String
    }

    init(_ artifact: Artifact) {
        let manifest = artifact.manifest
        reference = artifact.reference.description
        digest = artifact.descriptor.digest.description
        artifactType = artifact.imageManifest.artifactType ?? ""
        name = manifest.name
        version = manifest.version
        description = manifest.description
        authors = manifest.authors
        license = manifest.license
        tags = manifest.tags
        format = manifest.model.format.rawValue
        modelFile = manifest.model.file
        backend = manifest.runtime.backend.rawValue
        func tensor(_ spec: TensorSpec) -> Tensor {
            Tensor(name: spec.name, dtype: spec.dtype.rawValue, shape: spec.shape.map(\.description), description: spec.description)
        }
        // A packed manifest's steps compiled when it was packed; an older vessel may not have.
        let served =
            (try? ProcessingPlan(manifest: manifest))?.served
            ?? manifest.signature
        inputs = served.inputs.map(tensor)
        outputs = served.outputs.map(tensor)
        modelInputs = manifest.signature.inputs.map(tensor)
        modelOutputs = manifest.signature.outputs.map(tensor)
        preprocess = manifest.preprocess.map(\.type)
        postprocess = manifest.postprocess.map(\.type)
        examples = manifest.examples.map(\.name)
        files =
            artifact.files.map {
                File(
                    path: $0.path, role: $0.role.rawValue, mediaType: $0.descriptor.mediaType, size: $0.descriptor.size,
                    digest: $0.descriptor.digest.description)
            } + [
                File(
                    path: ManifestParser.fileName, role: "manifest", mediaType: artifact.manifestLayer.mediaType,
                    size: artifact.manifestLayer.size, digest: artifact.manifestLayer.digest.description)
            ]
        totalSize = artifact.size
    }

    func printText() {
        print("\(reference)  \(digest)")
        print("  name:        \(name)")
        print("  version:     \(version)")
        if let description { print("  description: \(description)") }
        if !authors.isEmpty { print("  authors:     \(authors.joined(separator: ", "))") }
        if let license { print("  license:     \(license)") }
        if !tags.isEmpty { print("  tags:        \(tags.joined(separator: ", "))") }
        print("  model:       \(format) \(modelFile) (backend \(backend))")
        let processed = inputs != modelInputs || outputs != modelOutputs
        for (title, ins, outs) in [(processed ? "served signature (what clients send and get):" : "signature:", inputs, outputs)]
            + (processed ? [("model signature (the graph's own, behind the processing steps):", modelInputs, modelOutputs)] : [])
        {
            print("  \(title)")
            for (kind, tensors) in [("input ", ins), ("output", outs)] {
                for tensor in tensors {
                    print("    \(kind) \(tensor.name)  \(tensor.dtype)[\(tensor.shape.joined(separator: ", "))]\(tensor.description.map { "  \($0)" } ?? "")")
                }
            }
        }
        if !preprocess.isEmpty { print("  preprocess:  \(preprocess.joined(separator: " → "))") }
        if !postprocess.isEmpty { print("  postprocess: \(postprocess.joined(separator: " → "))") }
        if !examples.isEmpty { print("  examples:    \(examples.joined(separator: ", "))") }
        print("  files:")
        var rows = [["    ROLE", "SIZE", "DIGEST", "PATH"]]
        for file in files {
            rows.append(["    " + file.role, ProgressBar.bytes(file.size), String(file.digest.dropFirst(7).prefix(12)), file.path])
        }
        printTable(rows)
        print("  total:       \(ProgressBar.bytes(totalSize))")
        if !attached.isEmpty {
            print("  attached:")
            var rows = [["    KIND", "DIGEST", "WHAT"]]
            for item in attached { rows.append(["    " + item.kind, String(item.digest.dropFirst(7).prefix(12)), item.detail]) }
            printTable(rows)
        }
    }
}

/// What `vessel inspect` shows for a runnable image: how it starts, and its layers.
struct ImageReport: Encodable {
    struct Layer: Encodable {
        var mediaType: String
        var size: Int64
        var digest: String
        var title: String?
    }

    var reference: String
    var digest: String
    var mediaType: String
    var architecture: String
    var os: String
    var created: String?
    var entrypoint: [String]
    var user: String?
    var exposedPorts: [String]
    var env: [String]
    var healthcheck: [String]?
    var labels: [String: String]
    var layers: [Layer]
    /// Referrers in the store: signatures.
    var attached: [InspectReport.Attached] = []

    init(reference: Reference, descriptor: Descriptor, image: RootFilesystem) {
        let settings = image.config.config
        self.reference = reference.description
        digest = descriptor.digest.description
        mediaType = descriptor.mediaType
        architecture = image.config.architecture
        os = image.config.os
        created = image.config.created
        entrypoint = (settings?.entrypoint ?? []) + (settings?.cmd ?? [])
        user = settings?.user
        exposedPorts = (settings?.exposedPorts ?? [:]).keys.sorted()
        env = settings?.env ?? []
        healthcheck = settings?.healthcheck?.test
        labels = settings?.labels ?? [:]
        layers = image.manifest.layers.map {
            Layer(
                mediaType: $0.mediaType, size: $0.size, digest: $0.digest.description,
                title: $0.annotations?[ModelPack.filepathAnnotation] ?? $0.annotations?[OCIAnnotation.title])
        }
    }

    func print(json: Bool) throws {
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
            Swift.print(String(decoding: try encoder.encode(self), as: UTF8.self))
            return
        }
        Swift.print("\(reference)  image  \(digest)")
        Swift.print("platform    \(os)/\(architecture)\(created.map { ", created \($0)" } ?? "")")
        Swift.print("entrypoint  \(entrypoint.joined(separator: " "))")
        Swift.print("user        \(user ?? "root")    ports \(exposedPorts.joined(separator: ", "))")
        if let healthcheck { Swift.print("healthcheck \(healthcheck.joined(separator: " "))") }
        Swift.print("env         \(env.joined(separator: " "))")
        for (key, value) in labels.sorted(by: { $0.key < $1.key }) { Swift.print("label       \(key)=\(value)") }
        var rows = [["LAYER", "SIZE", "DIGEST", "MEDIA TYPE"]]
        for layer in layers {
            rows.append([layer.title ?? "-", ProgressBar.bytes(layer.size), String(layer.digest.dropFirst(7).prefix(12)), layer.mediaType])
        }
        printTable(rows)
        Swift.print("total       \(ProgressBar.bytes(layers.reduce(0) { $0 + $1.size }))")
        if !attached.isEmpty {
            var rows = [["ATTACHED", "DIGEST", "WHAT"]]
            for item in attached { rows.append([item.kind, String(item.digest.dropFirst(7).prefix(12)), item.detail]) }
            printTable(rows)
        }
    }
}
