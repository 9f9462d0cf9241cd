import ArgumentParser
import Foundation
import VesselArtifact
import VesselImage
import VesselManifest
import VesselStore

struct Export: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Write an artifact as an OCI image-layout tar.")

    @Argument(help: "NAME[:TAG] or NAME@sha256:DIGEST")
    var reference: String

    @Option(name: .shortAndLong, help: "Output file.")
    var output: String

    @OptionGroup var store: StoreOptions

    func run() throws {
        try vessel.run {
            let (store, reference, descriptor) = try store.resolve(reference)
            let total = try store.closure(of: descriptor).reduce(Int64(0)) { $0 + $1.size }
            let refName = reference.refName ?? "\(reference.name):\(Reference.defaultTag)"
            try store.exportArchive(descriptor, refName: refName, to: output, progress: progressBar(label: "export", total: total))
            print("exported \(reference) to \(output)")
        }
    }
}
