import ArgumentParser
import Foundation
import VesselArtifact
import VesselImage
import VesselManifest
import VesselStore

struct Remove: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "rm", abstract: "Remove references; blobs stay until `vessel gc`.")

    @Argument(help: "NAME[:TAG] or NAME@sha256:DIGEST")
    var references: [String]

    @OptionGroup var store: StoreOptions

    func run() throws {
        try vessel.run {
            let store = try store.open()
            for text in references {
                for removed in try store.untag(try parseReference(text)) { print("removed \(removed)") }
            }
        }
    }
}
