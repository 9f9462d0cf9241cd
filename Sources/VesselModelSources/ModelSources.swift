public import Foundation
import VesselArtifact
public import VesselManifest
import VesselManifestYAML
public import VesselModel
public import VesselServer
public import VesselStore
import VesselONNX

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
    /// verifying the layers, which happens when it loads) or `alias`. The blobs the model will
    /// read in place start being checked now, on a thread of their own, while the server starts.
    public static func reference(_ reference: Reference, store: Store, alias: String? = nil) throws -> ModelSource {
        let artifact = try Artifact.load(reference, from: store, verifyLayers: false)
        let plan = InPlacePlan(artifact, store: store)
        return ModelSource(name: alias ?? artifact.manifest.name) { workDirectory in
            try LoadedModel.open(plan, workDirectory: workDirectory, deferringCheck: true)
        }
    }
}

/// An artifact's files that its backend reads where they lie in the store
/// (``LoadedModel/readsInPlace(_:)``: an ONNX model file and its weights), and the check of
/// their blobs, started on a thread of its own as soon as they are known.
struct InPlacePlan: Sendable {
    let artifact: Artifact
    let store: Store
    let files: [String: Unpacker.InPlaceFile]
    let check: PendingCheck?

    init(_ artifact: Artifact, store: Store) {
        self.artifact = artifact
        self.store = store
        let readsInPlace = LoadedModel.readsInPlace(artifact.manifest)
        let files = Unpacker(store: store).inPlaceFiles(artifact) { file, path in readsInPlace(path, file.role) }
        self.files = files
        check =
            files.isEmpty
            ? nil
            : PendingCheck {
                for file in files.values.sorted(by: { $0.file.path < $1.file.path }) {
                    try store.verifyBlob(file.file.descriptor, context: file.file.path)
                }
            }
    }
}

extension LoadedModel {
    /// Opens a model directory (a `vessel.yaml` beside the model), as `vessel pack` would read it.
    public static func open(directory: String, digest: String? = nil, started: Date = Date()) throws -> LoadedModel {
        try open(manifest: ManifestParser.load(directory: directory).manifest, directory: directory, digest: digest, started: started)
    }

    /// Loads an artifact from the store and unpacks it into `workDirectory`, except the files the
    /// backend can read where they lie in their blobs (``LoadedModel/readsInPlace(_:)``: an ONNX
    /// model file and its weights), which are mapped from the store and never copied.
    ///
    /// Every blob is checked against its digest once: the manifest, config and vessel.yaml as
    /// they are read, a tar layer before it is extracted, a raw layer as it is written, and a
    /// blob read in place on a second thread while the model loads from it. That check is
    /// waited for here, or with `deferringCheck` left in ``LoadedModel/pendingCheck`` for the
    /// server, which runs the examples meanwhile and calls the model ready only when it passed.
    /// A mismatch names the file and its digest. (Checking, extracting and decoding a 100 MB
    /// model one after the other took 250 ms of a 280 ms start.)
    public static func open(reference: Reference, store: Store, workDirectory: String, deferringCheck: Bool = false) throws -> LoadedModel {
        try open(
            InPlacePlan(try Artifact.load(reference, from: store, verifyLayers: false), store: store),
            workDirectory: workDirectory, deferringCheck: deferringCheck)
    }

    static func open(_ plan: InPlacePlan, workDirectory: String, deferringCheck: Bool) throws -> LoadedModel {
        let started = Date()
        try FileManager.default.createDirectory(atPath: workDirectory, withIntermediateDirectories: true)
        let regions = plan.files.mapValues { FileRegion(path: $0.blobPath, offset: Int($0.offset), length: Int($0.size)) }
        let loaded: LoadedModel
        do {
            try Unpacker(store: plan.store, overwrite: true, durable: false).unpack(plan.artifact, into: workDirectory, except: plan.files)
            loaded = try open(
                manifest: plan.artifact.manifest, directory: workDirectory, digest: plan.artifact.descriptor.digest.description,
                started: started, inPlace: regions, pendingCheck: deferringCheck ? plan.check : nil)
        } catch {
            // A corrupt blob explains a failed load better than the parser does.
            try plan.check?.wait()
            throw error
        }
        if !deferringCheck { try plan.check?.wait() }
        return loaded
    }
}
