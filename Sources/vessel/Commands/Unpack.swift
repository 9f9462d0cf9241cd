import ArgumentParser
import Foundation
import VesselArtifact
import VesselImage
import VesselManifest
import VesselStore

struct Unpack: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Write an artifact's original files back into a directory.")

    @Argument(help: "NAME[:TAG] or NAME@sha256:DIGEST")
    var reference: String

    @Argument(help: "Target directory (created if missing).")
    var directory: String

    @Flag(help: "Overwrite files that already exist.")
    var force = false

    @OptionGroup var store: StoreOptions

    func run() throws {
        try vessel.run {
            let store = try store.open()
            let artifact = try Artifact.load(try parseReference(reference), from: store)
            let written = try Unpacker(store: store, overwrite: force).unpack(artifact, into: directory)
            print("unpacked \(written.count) file(s) into \(directory)")
        }
    }
}
