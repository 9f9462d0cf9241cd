public import VesselManifest

/// CNCF ModelPack names: media types and annotation keys.
///
/// See https://github.com/modelpack/model-spec (docs/spec.md, docs/config.md, docs/annotations.md).
/// Readers also accept the earlier `vnd.cnai.*` spelling.
public enum ModelPack {
    public static let artifactType = "application/vnd.cncf.model.manifest.v1+json"
    public static let configMediaType = "application/vnd.cncf.model.config.v1+json"
    static let legacyArtifactType = "application/vnd.cnai.model.manifest.v1+json"
    static let legacyConfigMediaType = "application/vnd.cnai.model.config.v1+json"

    public static let filepathAnnotation = "org.cncf.model.filepath"
    public static let fileMetadataAnnotation = "org.cncf.model.file.metadata+json"
    public static let untestedAnnotation = "org.cncf.model.file.mediatype.untested"

    public enum Packing: String, Sendable {
        case raw, tar
    }

    /// `application/vnd.cncf.model.<role>.v1.<raw|tar>`.
    public static func layerMediaType(role: FileRole, packing: Packing) -> String {
        "application/vnd.cncf.model.\(role.mediaTypeStem).v1.\(packing.rawValue)"
    }

    /// The role and packing a layer media type stands for, in either spelling; nil when the
    /// media type is not a ModelPack layer (or is compressed, which Vessel does not write).
    public static func parseLayerMediaType(_ mediaType: String) -> (role: FileRole, packing: Packing)? {
        for prefix in ["application/vnd.cncf.model.", "application/vnd.cnai.model."] where mediaType.hasPrefix(prefix) {
            let rest = mediaType.dropFirst(prefix.count)
            for packing in [Packing.raw, .tar] {
                let suffix = ".v1.\(packing.rawValue)"
                guard rest.hasSuffix(suffix) else { continue }
                let stem = rest.dropLast(suffix.count)
                if let role = FileRole.allCases.first(where: { $0.mediaTypeStem == stem }) { return (role, packing) }
            }
        }
        return nil
    }
}

/// Vessel's own annotation keys on the artifact manifest.
public enum VesselAnnotation {
    /// Digest of the layer holding `vessel.yaml`.
    public static let manifest = "dev.vessel.manifest"
    /// The manifest schema version that layer is written in.
    public static let schemaVersion = "dev.vessel.manifest.schema-version"
    /// Whether `vessel pack` ran the bundled examples: `passed`, `none` (there were none) or
    /// `skipped` (`--no-test`).
    public static let examples = "dev.vessel.examples"
}

/// The ModelPack model config blob. See https://github.com/modelpack/model-spec/blob/main/docs/config.md
public struct ModelConfig: Codable, Hashable, Sendable {
    public struct DescriptorSection: Codable, Hashable, Sendable {
        public var createdAt: String?
        public var authors: [String]?
        public var name: String?
        public var version: String?
        public var description: String?
        public var licenses: [String]?
        public var family: String?

        public init(
            createdAt: String? = nil, authors: [String]? = nil, name: String? = nil, version: String? = nil,
            description: String? = nil, licenses: [String]? = nil, family: String? = nil
        ) {
            self.createdAt = createdAt
            self.authors = authors
            self.name = name
            self.version = version
            self.description = description
            self.licenses = licenses
            self.family = family
        }
    }

    public struct ConfigSection: Codable, Hashable, Sendable {
        public var architecture: String?
        public var format: String?
        public var paramSize: String?
        public var precision: String?
        public var quantization: String?

        public init(
            architecture: String? = nil, format: String? = nil, paramSize: String? = nil,
            precision: String? = nil, quantization: String? = nil
        ) {
            self.architecture = architecture
            self.format = format
            self.paramSize = paramSize
            self.precision = precision
            self.quantization = quantization
        }
    }

    public struct ModelFS: Codable, Hashable, Sendable {
        public var type: String
        public var diffIds: [String]

        public init(type: String, diffIds: [String]) {
            self.type = type
            self.diffIds = diffIds
        }
    }

    public var descriptor: DescriptorSection
    public var config: ConfigSection
    public var modelfs: ModelFS

    public init(descriptor: DescriptorSection, config: ConfigSection, modelfs: ModelFS) {
        self.descriptor = descriptor
        self.config = config
        self.modelfs = modelfs
    }
}

/// Per-file metadata carried in `org.cncf.model.file.metadata+json`, fixed to what is
/// reproducible: owner 0, time 0, mode from the executable bit only.
struct FileMetadata: Codable {
    var name: String
    var mode: Int
    var uid: Int = 0
    var gid: Int = 0
    var size: Int64
    var mtime: String = "1970-01-01T00:00:00Z"
    var typeflag: Int
}
