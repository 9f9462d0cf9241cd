public import Foundation
public import VesselImage
import VesselManifest
public import VesselStore

/// Provenance and an SBOM for an image `vessel image` built, attached to the image's manifest
/// as the artifact's are to its own (`Attestations.attach`).
///
/// - **SBOM** (CycloneDX 1.5): the image as a `container`; the runtime binary (or a ModelCar's
///   busybox) and every shared library with its SHA-256, its path in the image and the Debian
///   package and version that installed it (a `pkg:deb` purl); the Swift packages the runtime is
///   built from (`pkg:swift` purls, as this build resolved them); a Python model's locked
///   packages (`pkg:pypi` purls, each with its wheel's SHA-256); the model and its files.
/// - **Provenance** (SLSA v1): what `vessel image` was asked, and every input by digest — the
///   artifact's manifest, the binary, each library.
extension Attestations {
    public static let imageBuildType = "https://vessel.dev/image/v1"

    /// What one `vessel image` did: the inputs of both documents.
    public struct ImageRecord: Sendable {
        public var reference: String
        public var manifest: Descriptor
        /// server, modelcar or runtime (`ImageBuilder.Role`).
        public var role: String
        public var artifactReference: String?
        public var artifactDigest: Digest?
        public var modelName: String?
        public var modelVersion: String?
        public var contents: ImageContents
        /// The options it was built with, by name.
        public var parameters: [String: String]
        public var vesselVersion: String
        public var started: Date
        public var finished: Date

        public init(
            reference: String, manifest: Descriptor, role: String, artifactReference: String?, artifactDigest: Digest?, modelName: String?,
            modelVersion: String?, contents: ImageContents, parameters: [String: String], vesselVersion: String, started: Date, finished: Date
        ) {
            self.reference = reference
            self.manifest = manifest
            self.role = role
            self.artifactReference = artifactReference
            self.artifactDigest = artifactDigest
            self.modelName = modelName
            self.modelVersion = modelVersion
            self.contents = contents
            self.parameters = parameters
            self.vesselVersion = vesselVersion
            self.started = started
            self.finished = finished
        }
    }

    /// The image's CycloneDX 1.5 SBOM.
    public static func imageSBOM(_ record: ImageRecord) throws -> [UInt8] {
        typealias Component = CycloneDX.Component
        typealias Hash = CycloneDX.Hash
        typealias Property = CycloneDX.Property
        typealias Dependency = CycloneDX.Dependency
        let (name, tag) = splitReference(record.reference)
        let image = Component(
            type: "container", bomRef: "image", name: name, version: tag, purl: ociPurl(name: name, digest: record.manifest.digest), hashes: nil,
            properties: [Property(name: "vessel:image-role", value: record.role)])
        func part(_ part: ImageContents.Part, type: String, version: String?) -> Component {
            Component(
                type: type, bomRef: "file:" + part.pathInImage, name: part.package?.name ?? part.name, version: part.package?.version ?? version,
                purl: part.package?.purl, hashes: [Hash(content: part.sha256)],
                properties: [Property(name: "vessel:path", value: part.pathInImage), Property(name: "vessel:file", value: part.name)],
            )
        }
        var components = record.contents.executables.map {
            // The runtime binary is Vessel's own; a busybox is its Debian package's.
            part($0, type: "application", version: $0.package == nil ? record.vesselVersion : nil)
        }
        components += record.contents.libraries.map { part($0, type: "library", version: nil) }
        components += record.contents.swiftPackages.map { package in
            let purl = swiftPurl(package)
            return Component(
                type: "library", bomRef: purl ?? "swift:" + package.name, name: package.name, version: package.version, purl: purl, hashes: nil,
                properties: package.revision.isEmpty ? nil : [Property(name: "vessel:revision", value: package.revision)],
                externalReferences: [CycloneDX.ExternalReference(type: "vcs", url: package.url)])
        }
        // A Python model's locked packages, each with its wheel's hash.
        components += record.contents.pythonPackages.map { package in
            let purl = "pkg:pypi/\(pypiName(package.name))@\(package.version)"
            return Component(
                type: "library", bomRef: purl, name: package.name, version: package.version, purl: purl,
                hashes: [Hash(content: package.sha256)], properties: [Property(name: "vessel:wheel", value: package.wheel)])
        }
        var dependencies: [Dependency] = []
        if let model = record.contents.model {
            let files = model.files.filter { $0.digest != nil }.map { file in
                Component(
                    type: "file", bomRef: "model:" + file.path, name: file.path, version: nil, purl: nil,
                    hashes: [Hash(content: String(file.digest!.dropFirst("sha256:".count)))],
                    properties: [Property(name: "vessel:size", value: String(file.size))])
            }
            components.append(
                Component(
                    type: "machine-learning-model", bomRef: "model", name: record.modelName ?? model.name, version: record.modelVersion ?? model.version,
                    purl: record.artifactDigest.map { ociPurl(name: record.modelName ?? model.name, digest: $0) }, hashes: nil,
                    properties: record.artifactReference.map { [Property(name: "vessel:reference", value: $0)] }))
            components += files
            dependencies.append(Dependency(ref: "model", dependsOn: files.map(\.bomRef)))
        }
        let direct = components.filter { !$0.bomRef.hasPrefix("model:") }.map(\.bomRef)
        dependencies.insert(Dependency(ref: "image", dependsOn: direct), at: 0)
        return try CycloneDX.document(
            vesselVersion: record.vesselVersion, finished: record.finished, subject: image, components: components, dependencies: dependencies)
    }

    /// The image's SLSA v1 provenance statement.
    public static func imageProvenance(_ record: ImageRecord) throws -> [UInt8] {
        struct ResourceDescriptor: Encodable {
            var name: String
            var digest: [String: String]
            var annotations: [String: String]?
        }
        struct BuildDefinition: Encodable {
            var buildType: String
            var externalParameters: [String: String]
            var resolvedDependencies: [ResourceDescriptor]
        }
        struct Predicate: Encodable {
            var buildDefinition: BuildDefinition
            var runDetails: SLSA.RunDetails
        }
        var dependencies: [ResourceDescriptor] = []
        if let digest = record.artifactDigest {
            dependencies.append(
                ResourceDescriptor(name: record.artifactReference ?? "artifact", digest: ["sha256": digest.hex], annotations: ["role": "artifact"]))
        }
        for package in record.contents.pythonPackages {
            dependencies.append(
                ResourceDescriptor(
                    name: package.wheel, digest: ["sha256": package.sha256], annotations: ["package": "pkg:pypi/\(pypiName(package.name))@\(package.version)"]))
        }
        for part in record.contents.executables + record.contents.libraries {
            var annotations = ["path": part.pathInImage, "source": part.source]
            if let package = part.package { annotations["package"] = package.purl }
            dependencies.append(ResourceDescriptor(name: part.name, digest: ["sha256": part.sha256], annotations: annotations))
        }
        var parameters = record.parameters
        parameters["reference"] = record.reference
        parameters["role"] = record.role
        if let artifact = record.artifactReference { parameters["artifact"] = artifact }
        let predicate = Predicate(
            buildDefinition: BuildDefinition(buildType: imageBuildType, externalParameters: parameters, resolvedDependencies: dependencies),
            runDetails: SLSA.runDetails(vesselVersion: record.vesselVersion, started: record.started, finished: record.finished))
        return try statement(
            subjectName: record.reference, digest: record.manifest.digest, predicateType: provenancePredicateType, predicate: encode(predicate))
    }

    /// NAME and TAG of `NAME[:TAG]`.
    static func splitReference(_ reference: String) -> (name: String, tag: String?) {
        guard let colon = reference.lastIndex(of: ":"), !reference[colon...].contains("/") else { return (reference, nil) }
        return (String(reference[..<colon]), String(reference[reference.index(after: colon)...]))
    }

    /// `pkg:swift/HOST/OWNER/NAME@VERSION` from a package's repository URL (nil for a local one).
    static func swiftPurl(_ package: SwiftPackages.Package) -> String? {
        var url = package.url
        for scheme in ["https://", "http://", "ssh://", "git@"] where url.hasPrefix(scheme) { url = String(url.dropFirst(scheme.count)) }
        if url.hasSuffix(".git") { url = String(url.dropLast(4)) }
        url = url.replacingOccurrences(of: ":", with: "/")
        let parts = url.split(separator: "/")
        guard parts.count >= 3, parts[0].contains(".") else { return nil }
        return "pkg:swift/\(parts.dropLast().joined(separator: "/"))/\(parts.last!)@\(package.version)"
    }
}
