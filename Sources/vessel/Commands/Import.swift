import ArgumentParser
import Foundation
import VesselArtifact
import VesselImage
import VesselManifest
import VesselStore

struct Import: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Read an OCI image-layout tar into the store, verifying every blob.")

    @Argument(help: "The .tar file.")
    var archive: String

    @Option(name: .customLong("as"), help: "NAME[:TAG] to give the imported artifact.")
    var rename: String?

    @OptionGroup var store: StoreOptions

    func run() throws {
        try vessel.run {
            let size = (try? FileSystem.size(of: archive)) ?? 0
            let tagged = try store.open().importArchive(
                from: archive, as: try rename.map(parseReference), progress: progressBar(label: "import", total: size)
            )
            for entry in tagged { print("imported \(entry.refName) \(entry.descriptor.digest)") }
        }
    }
}
