import ArgumentParser
import Foundation
import VesselArtifact
import VesselImage
import VesselManifest
import VesselStore

struct GC: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "gc", abstract: "Delete blobs no reference reaches, and leftovers of interrupted writes.")

    @Flag(help: "Only report what would be removed.")
    var dryRun = false

    @OptionGroup var store: StoreOptions

    func run() throws {
        try vessel.run {
            let report = try store.open().collectGarbage(dryRun: dryRun)
            let verb = dryRun ? "would remove" : "removed"
            print("\(verb) \(report.removedBlobs.count) blob(s), \(ProgressBar.bytes(report.freedBytes)); \(report.removedTemporaryFiles) temporary file(s)")
        }
    }
}
