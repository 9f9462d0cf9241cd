import Crypto
import Foundation
import VesselArtifact
import VesselManifest
import VesselStore
#if canImport(Glibc)
import Glibc
#endif

extension UnpackedFileIndex {
    /// Reads every layer of a (verified) artifact and records what each file holds.
    static func make(_ artifact: Artifact, store: Store) throws -> UnpackedFileIndex {
        var files: [File] = []
        for layer in artifact.imageManifest.layers {
            let context = layer.annotations?[ModelPack.filepathAnnotation] ?? layer.mediaType
            guard let (_, packing) = ModelPack.parseLayerMediaType(layer.mediaType) else {
                throw Artifact.LoadError.malformed(artifact.reference, "layer \(layer.digest) has media type \(layer.mediaType)")
            }
            switch packing {
            case .raw:
                files.append(File(path: try Unpacker.checked(context), digest: layer.digest.description, size: layer.size))
            case .tar:
                let fd = try FileSystem.openForReading(store.blobPath(layer.digest))
                defer { close(fd) }
                let reader = TarReader(fd: fd, path: context)
                while let entry = try reader.next() {
                    let path = try Unpacker.checked(entry.path)
                    switch entry.kind {
                    case .file:
                        var hasher = SHA256()
                        try reader.readContent { hasher.update(bufferPointer: $0) }
                        files.append(File(path: path, digest: VesselStore.Digest(bytes: hasher.finalize()).description, size: entry.size))
                    case .symlink(let target):
                        files.append(File(path: path, digest: nil, size: 0, link: target))
                    default:
                        break
                    }
                }
            }
        }
        // The signatures of the files, so that the runtime can require one (`vessel sign` before
        // `vessel image`).
        let signatures = try store.attachedDocuments(of: artifact.descriptor.digest, artifactType: OCIMediaType.sigstoreBundle).compactMap {
            _, manifest, layer -> String? in
            // Unlabelled: a files signature from before the label.
            guard (manifest.annotations?[OCIAnnotation.signatureFormat] ?? OCIAnnotation.modelSigningFormat) == OCIAnnotation.modelSigningFormat else {
                return nil
            }
            return String(decoding: try store.readBlob(layer, limit: 1 << 20, context: "a signature of \(artifact.reference)"), as: UTF8.self)
        }
        return UnpackedFileIndex(
            artifact: artifact.descriptor.digest.description, name: artifact.manifest.name,
            version: artifact.manifest.version, files: files, manifest: artifact.manifest, signatures: signatures.isEmpty ? nil : signatures)
    }
}
