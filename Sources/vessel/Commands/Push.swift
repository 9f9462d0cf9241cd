import ArgumentParser
import Foundation
import VesselRegistry
import VesselStore

struct Push: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Push an artifact or image to an OCI registry.",
        discussion: """
            Blobs the registry has are skipped; blobs known to be in another repository of the registry are mounted; the rest \
            upload in chunks, streamed from the store, and an interrupted push resumes. Credentials come from `vessel login` \
            or ~/.docker/config.json.
            """
    )

    @Argument(help: "NAME[:TAG] or NAME@sha256:DIGEST in the store.")
    var reference: String

    @Argument(help: "Destination: [HOST[:PORT]/]REPOSITORY[:TAG] (the tag defaults to the local one).")
    var destination: String

    @Option(name: .customLong("chunk-size"), help: "Upload chunk size in MiB.")
    var chunkSize: Int = 64

    @Option(name: .customLong("mount-from"), help: "Another repository on the same registry to mount blobs from.")
    var mountFrom: [String] = []

    @OptionGroup var registry: RegistryOptions
    @OptionGroup var store: StoreOptions

    func run() async throws {
        try await runAsync {
            let store = try store.open()
            let local = try parseReference(reference)
            let descriptor = try store.resolve(local)
            var target = try parseRegistryReference(destination)
            if !destination.contains("@"), !(destination.split(separator: "/").last ?? "").contains(":"), let tag = local.tag { target.tag = tag }
            guard chunkSize >= 1 else { throw ValidationError("--chunk-size must be at least 1 (MiB)") }
            let started = Date()
            let report = try await registry.withClient(for: target, store: store) { client in
                try await Pusher(
                    store: store, client: client, chunkSize: Int64(chunkSize) << 20,
                    progress: { progressBar(label: $0, total: $1) }, log: { print($0) }
                )
                .push(descriptor, to: target, mountFrom: mountFrom)
            }
            let seconds = Date().timeIntervalSince(started)
            print("pushed \(local) to \(target) \(descriptor.digest)")
            if !report.referrers.isEmpty {
                print(
                    "  \(report.referrers.count) referrer(s) (signatures, provenance, SBOM) pushed with it\(report.referrersByTag ? " (listed under the tag sha256-\(descriptor.digest.hex.prefix(12))…: the registry has no referrers API)" : "")"
                )
            }
            print(
                "  \(report.uploaded.count) uploaded (\(ProgressBar.bytes(report.bytesSent)) sent in \(String(format: "%.1f", seconds)) s), \(report.existing.count) already there, \(report.mounted.count) mounted, \(report.resumed.count) resumed"
            )
        }
    }
}
