import Foundation
public import VesselManifest
import VesselManifestYAML
public import VesselStore
#if canImport(Glibc)
import Glibc
#endif

/// A model artifact read back from a store and checked: its manifest, ModelPack config, the
/// parsed `vessel.yaml`, and one entry per packed file.
///
/// Loading verifies before anything is used: every JSON document against its digest, the
/// config's DiffIDs against the layers, and (by default) every layer blob re-hashed.
public struct Artifact: Sendable {
    public var reference: Reference
    public var descriptor: Descriptor
    public var imageManifest: ImageManifest
    public var config: ModelConfig
    public var manifest: Manifest
    /// The `vessel.yaml` text exactly as packed.
    public var manifestText: String
    public var manifestLayer: Descriptor
    public var files: [PackedFile]

    /// One packed file or directory.
    public struct PackedFile: Sendable, Hashable {
        public var path: String
        public var role: FileRole
        public var packing: ModelPack.Packing
        public var descriptor: Descriptor
        public var executable: Bool
    }

    public enum LoadError: Error, Sendable, CustomStringConvertible {
        case notAModel(Reference, artifactType: String?)
        case malformed(Reference, String)

        public var description: String {
            switch self {
            case .notAModel(let reference, let type):
                "\(reference) is not a model artifact (artifactType \(type ?? "none"), expected \(ModelPack.artifactType))"
            case .malformed(let reference, let reason): "\(reference) is malformed: \(reason)"
            }
        }
    }

    /// Resolves, reads and verifies an artifact.
    ///
    /// - Parameter verifyLayers: re-hash every layer (the default; a load never trusts the disk).
    public static func load(
        _ reference: Reference, from store: Store, verifyLayers: Bool = true,
        progress: (Descriptor) -> ProgressBar = { _ in .silent() }
    ) throws -> Artifact {
        try load(descriptor: try store.resolve(reference), as: reference, from: store, verifyLayers: verifyLayers, progress: progress)
    }

    /// Reads and verifies the artifact whose manifest is `descriptor`, tagged or not yet (a pull
    /// checks a signature before it tags); `reference` names it in messages.
    public static func load(
        descriptor: Descriptor, as reference: Reference, from store: Store, verifyLayers: Bool = true,
        progress: (Descriptor) -> ProgressBar = { _ in .silent() }
    ) throws -> Artifact {
        let manifestData = try store.readBlob(descriptor, context: "manifest of \(reference)")
        let imageManifest = try CanonicalJSON.decode(ImageManifest.self, from: manifestData, path: store.blobPath(descriptor.digest))
        let artifactType = imageManifest.artifactType ?? imageManifest.config.mediaType
        guard [ModelPack.artifactType, ModelPack.legacyArtifactType, ModelPack.configMediaType, ModelPack.legacyConfigMediaType].contains(artifactType) else {
            throw LoadError.notAModel(reference, artifactType: imageManifest.artifactType)
        }
        let configData = try store.readBlob(imageManifest.config, context: "config of \(reference)")
        let config = try CanonicalJSON.decode(ModelConfig.self, from: configData, path: store.blobPath(imageManifest.config.digest))
        let layerDigests = imageManifest.layers.map(\.digest.description)
        guard config.modelfs.diffIds == layerDigests else {
            throw LoadError.malformed(reference, "the config's modelfs.diffIds do not match the manifest's layers")
        }

        guard
            let manifestIndex = imageManifest.layers.firstIndex(where: {
                $0.digest.description == imageManifest.annotations?[VesselAnnotation.manifest]
                    && $0.annotations?[ModelPack.filepathAnnotation] == ManifestParser.fileName
            }) ?? imageManifest.layers.firstIndex(where: { $0.annotations?[ModelPack.filepathAnnotation] == ManifestParser.fileName })
        else {
            throw LoadError.malformed(reference, "no \(ManifestParser.fileName) layer")
        }
        let manifestLayer = imageManifest.layers[manifestIndex]
        let manifestBytes = try readSingleFile(manifestLayer, from: store, limit: Int64(Manifest.maximumBytes), reference: reference)
        let manifestText = String(decoding: manifestBytes, as: UTF8.self)
        let manifest = try ManifestParser.parse(data: Data(manifestBytes), file: "\(reference)/\(ManifestParser.fileName)", baseDirectory: nil).manifest

        var files: [PackedFile] = []
        // By position, not digest: a packed file may have the same bytes as vessel.yaml.
        for (index, layer) in imageManifest.layers.enumerated() where index != manifestIndex {
            guard let (role, packing) = ModelPack.parseLayerMediaType(layer.mediaType) else {
                throw LoadError.malformed(reference, "layer \(layer.digest) has media type \(layer.mediaType), which Vessel cannot unpack")
            }
            guard let path = layer.annotations?[ModelPack.filepathAnnotation] ?? layer.annotations?[OCIAnnotation.title] else {
                throw LoadError.malformed(reference, "layer \(layer.digest) has no \(ModelPack.filepathAnnotation) annotation")
            }
            var executable = false
            if let json = layer.annotations?[ModelPack.fileMetadataAnnotation],
                let metadata = try? JSONDecoder().decode(FileMetadata.self, from: Data(json.utf8))
            {
                executable = metadata.mode & 0o111 != 0
            }
            files.append(PackedFile(path: path, role: role, packing: packing, descriptor: layer, executable: executable))
        }
        for file in manifest.allFiles where !files.contains(where: { $0.path == file.path }) {
            throw LoadError.malformed(reference, "\(ManifestParser.fileName) names `\(file.path)`, which is not in the artifact")
        }
        if verifyLayers {
            for layer in imageManifest.layers {
                let bar = progress(layer)
                try store.verifyBlob(layer, context: layer.annotations?[ModelPack.filepathAnnotation] ?? layer.mediaType, progress: bar)
                bar.finish()
            }
        }
        return Artifact(
            reference: reference, descriptor: descriptor, imageManifest: imageManifest, config: config,
            manifest: manifest, manifestText: manifestText, manifestLayer: manifestLayer, files: files
        )
    }

    /// The content of a layer holding one small file: the raw bytes, or the only file of a tar.
    /// The whole blob is checked against its digest first.
    public static func readSingleFile(_ layer: Descriptor, from store: Store, limit: Int64, reference: Reference) throws -> [UInt8] {
        let context = layer.annotations?[ModelPack.filepathAnnotation] ?? layer.mediaType
        // An image built from the artifact holds the same blob as a plain OCI tar layer.
        let packing = ModelPack.parseLayerMediaType(layer.mediaType)?.packing ?? (layer.mediaType == OCIMediaType.layerTar ? .tar : nil)
        switch packing {
        case .raw?:
            return Array(try store.readBlob(layer, limit: limit, context: context))
        case .tar?:
            try store.verifyBlob(layer, context: context)
            let fd = try FileSystem.openForReading(store.blobPath(layer.digest))
            defer { close(fd) }
            let reader = TarReader(fd: fd, path: context)
            while let entry = try reader.next() {
                if case .file = entry.kind { return try reader.readAll(limit: limit) }
            }
            throw LoadError.malformed(reference, "layer \(layer.digest) (\(context)) holds no file")
        case nil:
            throw LoadError.malformed(reference, "layer \(layer.digest) has media type \(layer.mediaType), which Vessel cannot read")
        }
    }

    /// Total bytes of all layers.
    public var size: Int64 { imageManifest.layers.reduce(0) { $0 + $1.size } }
}
