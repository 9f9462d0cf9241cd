#if canImport(FoundationEssentials)
public import FoundationEssentials
#else
public import Foundation
#endif

/// OCI media types the store itself understands.
///
/// See https://github.com/opencontainers/image-spec/blob/main/media-types.md
public enum OCIMediaType {
    public static let imageManifest = "application/vnd.oci.image.manifest.v1+json"
    public static let imageIndex = "application/vnd.oci.image.index.v1+json"
    public static let imageConfig = "application/vnd.oci.image.config.v1+json"
    /// A Sigstore bundle, v0.3 JSON: a signature's layer, and the artifact type of its referrer.
    public static let sigstoreBundle = "application/vnd.dev.sigstore.bundle.v0.3+json"
    /// cosign's tag-form signature layer (a "simple signing" payload); Vessel also lists the
    /// manifest holding them under this artifact type.
    public static let cosignSimpleSigning = "application/vnd.dev.cosign.simplesigning.v1+json"

    /// The tag cosign looks under for `digest`'s tag-form signatures.
    public static func cosignSignatureTag(of digest: Digest) -> String { "sha256-\(digest.hex).sig" }
    public static let layerTar = "application/vnd.oci.image.layer.v1.tar"
    public static let layerTarGzip = "application/vnd.oci.image.layer.v1.tar+gzip"
    public static let empty = "application/vnd.oci.empty.v1+json"
    public static let dockerManifest = "application/vnd.docker.distribution.manifest.v2+json"
    public static let dockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json"
}

public enum OCIAnnotation {
    public static let refName = "org.opencontainers.image.ref.name"
    public static let title = "org.opencontainers.image.title"
    public static let version = "org.opencontainers.image.version"
    public static let description = "org.opencontainers.image.description"
    public static let created = "org.opencontainers.image.created"
    public static let authors = "org.opencontainers.image.authors"
    public static let licenses = "org.opencontainers.image.licenses"
    /// On a signature referrer (artifact type ``OCIMediaType/sigstoreBundle``): what its bundle
    /// signs — ``modelSigningFormat`` (the files), `in-toto` (an attestation), `cosign` (the
    /// manifest digest).
    public static let signatureFormat = "dev.vessel.signature.format"
    public static let modelSigningFormat = "model-signing/v1.0"
}

/// A content descriptor. See https://github.com/opencontainers/image-spec/blob/main/descriptor.md
public struct Descriptor: Codable, Hashable, Sendable {
    public var mediaType: String
    public var digest: Digest
    public var size: Int64
    public var artifactType: String?
    public var annotations: [String: String]?
    /// In an index: the platform the manifest is for.
    public var platform: Platform?

    public struct Platform: Codable, Hashable, Sendable {
        public var architecture: String
        public var os: String
        public var variant: String?
    }

    public init(mediaType: String, digest: Digest, size: Int64, artifactType: String? = nil, annotations: [String: String]? = nil) {
        self.mediaType = mediaType
        self.digest = digest
        self.size = size
        self.artifactType = artifactType
        self.annotations = annotations
    }
}

/// An image manifest. See https://github.com/opencontainers/image-spec/blob/main/manifest.md
public struct ImageManifest: Codable, Hashable, Sendable {
    public var schemaVersion: Int = 2
    public var mediaType: String? = OCIMediaType.imageManifest
    public var artifactType: String?
    public var config: Descriptor
    public var layers: [Descriptor]
    public var subject: Descriptor?
    public var annotations: [String: String]?

    public init(artifactType: String?, config: Descriptor, layers: [Descriptor], annotations: [String: String]?) {
        self.artifactType = artifactType
        self.config = config
        self.layers = layers
        self.annotations = annotations
    }
}

/// An image index, also the shape of a layout's `index.json`.
/// See https://github.com/opencontainers/image-spec/blob/main/image-index.md
public struct ImageIndex: Codable, Hashable, Sendable {
    public var schemaVersion: Int = 2
    public var mediaType: String? = OCIMediaType.imageIndex
    public var manifests: [Descriptor]
    public var annotations: [String: String]?

    public init(manifests: [Descriptor], annotations: [String: String]? = nil) {
        self.manifests = manifests
        self.annotations = annotations
    }
}

/// The `oci-layout` marker file. See https://github.com/opencontainers/image-spec/blob/main/image-layout.md
struct OCILayoutMarker: Codable {
    var imageLayoutVersion: String
}

/// JSON as the store writes it: keys sorted and no escaped slashes, so the same value always
/// has the same bytes and so the same digest on every machine.
public enum CanonicalJSON {
    public static func encode(_ value: some Encodable) throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return try encoder.encode(value)
    }

    public static func decode<T: Decodable>(_ type: T.Type, from data: Data, path: String) throws -> T {
        do {
            return try JSONDecoder().decode(type, from: data)
        } catch {
            throw StoreError.corrupt(path: path, reason: "not a valid \(T.self): \(error)")
        }
    }
}
