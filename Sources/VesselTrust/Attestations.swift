public import Foundation
public import VesselArtifact
public import VesselStore
import VesselManifest

/// Provenance and an SBOM for an artifact, attached beside it in the store as OCI 1.1 referrers
/// (what `vessel pack` does by default), pushed and pulled with it, and signed by `vessel sign`:
///
/// - **Provenance**: an in-toto v1 statement with an SLSA v1 provenance predicate. Its subject is
///   the artifact's manifest digest; `resolvedDependencies` lists every packed file (vessel.yaml,
///   the model's files, the wheels) with the SHA-256 of its bytes; the parameters say what was
///   asked (`vessel pack DIR -t REF`, whether the examples ran) and what the examples gave.
/// - **SBOM**: CycloneDX 1.5 JSON: the model (a `machine-learning-model` component, its OCI
///   purl), each file with its SHA-256, and each wheel a Python model runs on (its PyPI purl and
///   the wheel's SHA-256).
///
/// TypeURIs (`buildType`, the builder's `id`) name; they need not resolve.
public enum Attestations {
    public static let inTotoMediaType = "application/vnd.in-toto+json"
    public static let cycloneDXMediaType = "application/vnd.cyclonedx+json"
    public static let statementType = "https://in-toto.io/Statement/v1"
    public static let provenancePredicateType = "https://slsa.dev/provenance/v1"
    public static let cycloneDXPredicateType = "https://cyclonedx.org/bom"
    /// On a referrer's manifest: the predicate type its statement (or signed statement) carries.
    public static let predicateTypeAnnotation = "in-toto.io/predicate-type"
    public static let buildType = "https://vessel.dev/pack/v1"
    public static let builderID = "https://vessel.dev/builder/local"

    /// A wheel a Python model runs on, as `vessel.lock` pins it.
    public struct Wheel: Sendable {
        public var name: String
        public var version: String
        public var sha256: String
        public var file: String
        public init(name: String, version: String, sha256: String, file: String) {
            self.name = name
            self.version = version
            self.sha256 = sha256
            self.file = file
        }
    }

    /// What one `vessel pack` did: the inputs of both documents.
    public struct PackRecord: Sendable {
        public var reference: String
        public var manifest: Descriptor
        public var modelName: String
        public var modelVersion: String
        public var files: [Packer.PackedFile]
        public var wheels: [Wheel]
        /// The directory as given on the command line.
        public var directory: String
        /// "passed", "none" (no examples) or "skipped" (`--no-test`).
        public var examples: String
        public var exampleCount: Int
        public var vesselVersion: String
        public var started: Date
        public var finished: Date

        public init(
            reference: String, manifest: Descriptor, modelName: String, modelVersion: String, files: [Packer.PackedFile], wheels: [Wheel],
            directory: String, examples: String, exampleCount: Int, vesselVersion: String, started: Date, finished: Date
        ) {
            self.reference = reference
            self.manifest = manifest
            self.modelName = modelName
            self.modelVersion = modelVersion
            self.files = files
            self.wheels = wheels
            self.directory = directory
            self.examples = examples
            self.exampleCount = exampleCount
            self.vesselVersion = vesselVersion
            self.started = started
            self.finished = finished
        }
    }

    // MARK: Documents

    /// The SLSA v1 provenance statement.
    public static func provenance(_ record: PackRecord) throws -> [UInt8] {
        struct ResourceDescriptor: Encodable {
            struct Annotations: Encodable {
                var role: String
                var size: Int64
                var layer: String
            }
            var name: String
            var digest: [String: String]
            var annotations: Annotations
        }
        struct ExternalParameters: Encodable {
            var directory: String
            var reference: String
            var runExamples: Bool
        }
        struct Examples: Encodable {
            var result: String
            var count: Int
        }
        struct InternalParameters: Encodable { var examples: Examples }
        struct BuildDefinition: Encodable {
            var buildType: String
            var externalParameters: ExternalParameters
            var internalParameters: InternalParameters
            var resolvedDependencies: [ResourceDescriptor]
        }
        struct Predicate: Encodable {
            var buildDefinition: BuildDefinition
            var runDetails: SLSA.RunDetails
        }
        let predicate = Predicate(
            buildDefinition: BuildDefinition(
                buildType: buildType,
                externalParameters: ExternalParameters(directory: record.directory, reference: record.reference, runExamples: record.examples != "skipped"),
                internalParameters: InternalParameters(examples: Examples(result: record.examples, count: record.exampleCount)),
                resolvedDependencies: record.files.map {
                    ResourceDescriptor(
                        name: $0.path, digest: ["sha256": $0.sha256.hex],
                        annotations: .init(role: $0.role.rawValue, size: $0.size, layer: $0.layer.description))
                }),
            runDetails: SLSA.runDetails(vesselVersion: record.vesselVersion, started: record.started, finished: record.finished))
        return try statement(subject: record, predicateType: provenancePredicateType, predicate: encode(predicate))
    }

    /// The CycloneDX 1.5 SBOM.
    public static func sbom(_ record: PackRecord) throws -> [UInt8] {
        typealias Component = CycloneDX.Component
        typealias Hash = CycloneDX.Hash
        typealias Property = CycloneDX.Property
        let model = Component(
            type: "machine-learning-model", bomRef: "model", name: record.modelName, version: record.modelVersion,
            purl: ociPurl(name: record.modelName, digest: record.manifest.digest), hashes: nil,
            properties: [Property(name: "vessel:reference", value: record.reference)])
        let wheelPaths = Set(record.wheels.map { ".vessel/wheels/" + $0.file })
        var components = record.files.filter { !wheelPaths.contains($0.path) }.map {
            Component(
                type: "file", bomRef: "file:" + $0.path, name: $0.path, version: nil, purl: nil, hashes: [Hash(content: $0.sha256.hex)],
                properties: [Property(name: "vessel:role", value: $0.role.rawValue), Property(name: "vessel:size", value: String($0.size))])
        }
        components += record.wheels.map { wheel in
            let purl = "pkg:pypi/\(pypiName(wheel.name))@\(wheel.version)"
            return Component(
                type: "library", bomRef: purl, name: wheel.name, version: wheel.version, purl: purl, hashes: [Hash(content: wheel.sha256)],
                properties: [Property(name: "vessel:wheel", value: wheel.file)])
        }
        return try CycloneDX.document(
            vesselVersion: record.vesselVersion, finished: record.finished, subject: model, components: components,
            dependencies: [.init(ref: "model", dependsOn: components.map(\.bomRef))])
    }

    /// An in-toto v1 statement about the artifact: `predicate` is JSON bytes, placed as they are.
    public static func statement(subject record: PackRecord, predicateType: String, predicate: [UInt8]) throws -> [UInt8] {
        try statement(subjectName: record.reference, digest: record.manifest.digest, predicateType: predicateType, predicate: predicate)
    }

    public static func statement(subjectName: String, digest: Digest, predicateType: String, predicate: [UInt8]) throws -> [UInt8] {
        struct Subject: Encodable {
            var name: String
            var digest: [String: String]
        }
        // Keys in order, the predicate spliced in: it is already JSON.
        let subject = try encode([Subject(name: subjectName, digest: ["sha256": digest.hex])])
        return Array(#"{"_type":"\#(statementType)","predicate":"#.utf8) + predicate
            + Array(#","predicateType":"#.utf8) + (try encode(predicateType)) + Array(#","subject":"#.utf8) + subject + Array("}".utf8)
    }

    // MARK: In the store

    /// A document attached to an artifact.
    public struct Attachment: Sendable {
        public var kind: Kind
        public var referrer: Descriptor
        public var layer: Descriptor
        public enum Kind: String, Sendable, CaseIterable {
            case provenance, sbom
            public var artifactType: String { self == .provenance ? inTotoMediaType : cycloneDXMediaType }
            public var predicateType: String { self == .provenance ? provenancePredicateType : cycloneDXPredicateType }
        }
    }

    /// Attaches `document` to the artifact whose manifest is `subject`, replacing any earlier one
    /// of the same kind (a repack makes new ones).
    @discardableResult
    public static func attach(_ document: [UInt8], kind: Attachment.Kind, to subject: Descriptor, store: Store) throws -> Descriptor {
        let fileName = kind == .provenance ? "provenance.intoto.json" : "sbom.cdx.json"
        let earlier = try store.referrers(of: subject.digest, artifactType: kind.artifactType)
        let attached = try store.attach(
            document: document, mediaType: kind.artifactType, title: fileName, artifactType: kind.artifactType,
            annotations: [predicateTypeAnnotation: kind.predicateType], to: subject)
        try store.detach(earlier.filter { $0.digest != attached.digest })
        return attached
    }

    /// The documents attached to the artifact whose manifest digest is `subject`, newest last.
    public static func attached(to subject: Digest, store: Store) throws -> [Attachment] {
        try Attachment.Kind.allCases.flatMap { kind in
            try store.attachedDocuments(of: subject, artifactType: kind.artifactType).map {
                Attachment(kind: kind, referrer: $0.referrer, layer: $0.layer)
            }
        }
    }

    /// An attachment's document.
    public static func read(_ attachment: Attachment, store: Store) throws -> [UInt8] {
        Array(try store.readBlob(attachment.layer, limit: 64 << 20, context: "\(attachment.kind.rawValue) document"))
    }

    // MARK: Helpers

    /// The parts of a CycloneDX 1.5 document both SBOMs use.
    enum CycloneDX {
        struct Hash: Encodable {
            var alg = "SHA-256"
            var content: String
        }
        struct Property: Encodable {
            var name: String
            var value: String
        }
        struct ExternalReference: Encodable {
            var type: String
            var url: String
        }
        struct Component: Encodable {
            var type: String
            var bomRef: String
            var name: String
            var version: String?
            var purl: String?
            var hashes: [Hash]?
            var properties: [Property]?
            var externalReferences: [ExternalReference]? = nil
            enum CodingKeys: String, CodingKey {
                case type, name, version, purl, hashes, properties, externalReferences
                case bomRef = "bom-ref"
            }
        }
        struct Dependency: Encodable {
            var ref: String
            var dependsOn: [String]
        }

        /// The document: `subject` (the model, the image) in its metadata, Vessel as the tool.
        static func document(
            vesselVersion: String, finished: Date, subject: Component, components: [Component], dependencies: [Dependency]
        ) throws
            -> [UInt8]
        {
            struct Tools: Encodable { var components: [Component] }
            struct Metadata: Encodable {
                var timestamp: String
                var tools: Tools
                var component: Component
            }
            struct BOM: Encodable {
                var bomFormat = "CycloneDX"
                var specVersion = "1.5"
                var serialNumber: String
                var version = 1
                var metadata: Metadata
                var components: [Component]
                var dependencies: [Dependency]
            }
            let vessel = Component(type: "application", bomRef: "vessel", name: "vessel", version: vesselVersion, purl: nil, hashes: nil, properties: nil)
            return try encode(
                BOM(
                    serialNumber: "urn:uuid:" + UUID().uuidString.lowercased(),
                    metadata: Metadata(timestamp: timestamp(finished), tools: Tools(components: [vessel]), component: subject),
                    components: components, dependencies: dependencies))
        }
    }

    /// SLSA v1 provenance's run details, the same for every build Vessel does.
    enum SLSA {
        struct Builder: Encodable {
            var id: String
            var version: [String: String]
        }
        struct Metadata: Encodable {
            var invocationId: String
            var startedOn: String
            var finishedOn: String
        }
        struct RunDetails: Encodable {
            var builder: Builder
            var metadata: Metadata
        }

        static func runDetails(vesselVersion: String, started: Date, finished: Date) -> RunDetails {
            RunDetails(
                builder: Builder(id: builderID, version: ["vessel": vesselVersion]),
                metadata: Metadata(
                    invocationId: "urn:uuid:" + UUID().uuidString.lowercased(), startedOn: timestamp(started), finishedOn: timestamp(finished)))
        }
    }

    static func encode<T: Encodable>(_ value: T) throws -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return Array(try encoder.encode(value))
    }

    static func timestamp(_ date: Date) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime]
        return formatter.string(from: date)
    }

    /// `pkg:oci/NAME@sha256%3AHEX`: the package URL of an OCI artifact.
    static func ociPurl(name: String, digest: Digest) -> String {
        let last = name.split(separator: "/").last.map(String.init) ?? name
        return "pkg:oci/\(last.lowercased())@sha256%3A\(digest.hex)"
    }

    /// PEP 503's normalized name, as PyPI purls spell it.
    static func pypiName(_ name: String) -> String {
        var out = ""
        var lastWasSeparator = false
        for character in name.lowercased() {
            if character == "-" || character == "_" || character == "." {
                if !lastWasSeparator { out.append("-") }
                lastWasSeparator = true
            } else {
                out.append(character)
                lastWasSeparator = false
            }
        }
        return out
    }
}
