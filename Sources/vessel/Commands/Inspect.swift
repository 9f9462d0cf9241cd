import ArgumentParser
import Foundation
import VesselArtifact
import VesselImage
import VesselManifest
import VesselStore
import VesselTrust

struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show an artifact's metadata, signature, files and what is attached to it (signatures, provenance, SBOM).")

    @Argument(help: "NAME[:TAG] or NAME@sha256:DIGEST")
    var reference: String

    @Flag(help: "Print JSON.")
    var json = false

    @Option(help: ArgumentHelp("Print an attached document instead: provenance (SLSA, in-toto) or sbom (CycloneDX).", valueName: "kind"))
    var attached: String?

    @OptionGroup var store: StoreOptions

    func run() throws {
        try vessel.run {
            let store = try store.open()
            let reference = try parseReference(reference)
            let descriptor = try store.resolve(reference)
            let attachments = try Attestations.attached(to: descriptor.digest, store: store)
            if let attached {
                guard let kind = Attestations.Attachment.Kind(rawValue: attached) else {
                    throw ValidationError("--attached takes provenance or sbom, not \(attached)")
                }
                guard let attachment = attachments.last(where: { $0.kind == kind }) else {
                    throw ValidationError("\(reference) has no \(attached) attached (vessel pack and vessel image attach one unless --no-attestations)")
                }
                print(String(decoding: try Attestations.read(attachment, store: store), as: UTF8.self))
                return
            }
            let listed =
                attachments.map { InspectReport.Attached(kind: $0.kind.rawValue, digest: $0.referrer.digest.description, detail: $0.kind.predicateType) }
                + (try signatures(of: descriptor, store: store))
            if descriptor.artifactType != ModelPack.artifactType, let image = try? RootFilesystem.load(descriptor, from: store) {
                var report = ImageReport(reference: reference, descriptor: descriptor, image: image)
                report.attached = listed
                try report.print(json: json)
                return
            }
            let artifact = try Artifact.load(reference, from: store, verifyLayers: false)
            var report = InspectReport(artifact)
            report.attached = listed
            if json {
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
                print(String(decoding: try encoder.encode(report), as: UTF8.self))
            } else {
                report.printText()
            }
        }
    }

    /// Every signature attached to `descriptor`: the bundles, then cosign's tag-form layers.
    private func signatures(of descriptor: Descriptor, store: Store) throws -> [InspectReport.Attached] {
        let bundles = try ArtifactSigning.signatures(of: descriptor, store: store).map {
            InspectReport.Attached(kind: "signature", digest: $0.descriptor.digest.description, detail: $0.detail)
        }
        let tagForm = try ManifestSigning.simpleSignatures(of: descriptor, store: store).map { signature in
            InspectReport.Attached(
                kind: "signature", digest: signature.descriptor.digest.description,
                detail: "cosign tag form (\(OCIMediaType.cosignSignatureTag(of: descriptor.digest).prefix(19))….sig)"
                    + (signature.keyHint.map { ", key \($0.prefix(12))…" } ?? ""))
        }
        return bundles + tagForm
    }
}
