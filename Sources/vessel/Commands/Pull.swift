import ArgumentParser
import Foundation
import VesselRegistry
import VesselStore

struct Pull: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Pull an artifact or image from an OCI registry into the store, verifying every blob.",
        discussion: "An interrupted pull resumes where it stopped; nothing is tagged until every blob is stored and verified."
    )

    @Argument(help: "Source: [HOST[:PORT]/]REPOSITORY[:TAG|@DIGEST].")
    var source: String

    @Option(name: .customLong("as"), help: "NAME[:TAG] to store it as (default: the repository path and tag).")
    var rename: String?

    @OptionGroup var registry: RegistryOptions
    @OptionGroup var store: StoreOptions

    func run() async throws {
        try await runAsync {
            let store = try store.open()
            let source = try parseRegistryReference(source)
            let local = try rename.map(parseReference)
                ?? Reference(name: source.repository, tag: source.tag ?? "pulled-" + String(source.digest?.dropFirst(7).prefix(12) ?? "latest"))
            let started = Date()
            let report = try await registry.withClient(for: source, store: store) { client in
                try await Puller(store: store, client: client, progress: { progressBar(label: $0, total: $1) }, log: { print($0) })
                    .pull(source, as: local)
            }
            let seconds = Date().timeIntervalSince(started)
            print("pulled \(source) as \(local) \(report.manifest.digest)")
            print("  \(report.downloaded.count) downloaded (\(ProgressBar.bytes(report.bytesReceived)) in \(String(format: "%.1f", seconds)) s), \(report.present.count) already in the store, \(report.resumed.count) resumed")
        }
    }
}
