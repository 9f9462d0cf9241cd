public import Foundation
import VesselArtifact
import VesselManifest
import VesselManifestYAML
public import VesselModel
public import VesselServer
public import VesselStore

/// Where the `vessel` command finds models to serve and test: a model directory (a vessel.yaml
/// beside the model) or an artifact in the store. The runtime binary that images ship has neither
/// a YAML parser nor a store, and serves only ``ModelSource/unpacked(root:index:alias:)``.
extension ModelSource {
    /// A model directory, read as `vessel pack` reads it (errors name the line in vessel.yaml).
    /// With `verifying`, every file is checked against that index before the model loads.
    public static func directory(_ path: String, alias: String? = nil, verifying index: UnpackedFileIndex? = nil) throws -> ModelSource {
        let manifest = try ManifestParser.load(directory: path).manifest
        return ModelSource(name: alias ?? manifest.name) { _ in
            let started = Date()
            try index?.verify(root: path)
            // Read again: the files may have changed since the name was taken.
            return try LoadedModel.open(directory: path, digest: index?.artifact, started: started)
        }
    }

    /// An artifact in the store, served under the name in its vessel.yaml (read without
    /// verifying the layers, which happens when it loads) or `alias`.
    public static func reference(_ reference: Reference, store: Store, alias: String? = nil) throws -> ModelSource {
        let name = try alias ?? Artifact.load(reference, from: store, verifyLayers: false).manifest.name
        return ModelSource(name: name) { workDirectory in
            try LoadedModel.open(reference: reference, store: store, workDirectory: workDirectory)
        }
    }
}

extension LoadedModel {
    /// Opens a model directory (a `vessel.yaml` beside the model), as `vessel pack` would read it.
    public static func open(directory: String, digest: String? = nil, started: Date = Date()) throws -> LoadedModel {
        try open(manifest: ManifestParser.load(directory: directory).manifest, directory: directory, digest: digest, started: started)
    }

    /// Loads an artifact from the store and unpacks it into `workDirectory`. Every blob is
    /// checked against its digest once: the manifest, config and vessel.yaml as they are read,
    /// each other layer as the unpacker writes it (a tar layer before it is extracted); a
    /// mismatch leaves no file and the model not ready. (Checking every layer before unpacking as
    /// well read a 100 MB model twice: 87 ms of a 340 ms start.)
    public static func open(reference: Reference, store: Store, workDirectory: String) throws -> LoadedModel {
        let started = Date()
        let artifact = try Artifact.load(reference, from: store, verifyLayers: false)
        try FileManager.default.createDirectory(atPath: workDirectory, withIntermediateDirectories: true)
        _ = try Unpacker(store: store, overwrite: true, durable: false).unpack(artifact, into: workDirectory)
        return try open(manifest: artifact.manifest, directory: workDirectory, digest: artifact.descriptor.digest.description, started: started)
    }
}
