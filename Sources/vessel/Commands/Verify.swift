import ArgumentParser
import Foundation
import VesselArtifact
import VesselImage
import VesselManifest
import VesselStore

struct Verify: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Re-hash every blob of an artifact; fail naming the first that does not match.")

    @Argument(help: "NAME[:TAG] or NAME@sha256:DIGEST")
    var reference: String

    @OptionGroup var store: StoreOptions

    func run() throws {
        try vessel.run {
            let (store, reference, descriptor) = try store.resolve(reference)
            let blobs = try store.verify(descriptor) { blob in
                progressBar(label: blob.annotations?[OCIAnnotation.title] ?? blob.digest.short, total: blob.size)
            }
            // A model artifact is also loaded, which checks its structure beyond the digests.
            if descriptor.artifactType == ModelPack.artifactType {
                _ = try Artifact.load(reference, from: store, verifyLayers: false)
            }
            let total = blobs.reduce(Int64(0)) { $0 + $1.size }
            print("verified \(reference): \(blobs.count) blobs, \(ProgressBar.bytes(total)), all digests match")
        }
    }
}
