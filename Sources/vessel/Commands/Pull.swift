import ArgumentParser
import Foundation
import VesselRegistry
import VesselArtifact
import VesselStore
import VesselTrust

struct Pull: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Pull an artifact or image from an OCI registry into the store, verifying every blob.",
        discussion: "An interrupted pull resumes where it stopped; nothing is tagged until every blob is stored and verified."
    )

    @Argument(help: "Source: [HOST[:PORT]/]REPOSITORY[:TAG|@DIGEST].")
    var source: String

    @Option(name: .customLong("as"), help: "NAME[:TAG] to store it as (default: the repository path and tag).")
    var rename: String?

    @Option(
        name: .customLong("verify-key"),
        help: ArgumentHelp(
            "A public key (PEM): refuse the artifact unless a signature pulled with it verifies with this key; nothing is tagged otherwise.", valueName: "pub"))
    var verifyKey: String?

    @OptionGroup var registry: RegistryOptions
    @OptionGroup var store: StoreOptions

    func run() async throws {
        try await runAsync {
            let store = try store.open()
            let source = try parseRegistryReference(source)
            let local =
                try rename.map(parseReference)
                ?? Reference(name: source.repository, tag: source.tag ?? "pulled-" + String(source.digest?.dropFirst(7).prefix(12) ?? "latest"))
            let started = Date()
            let key = try verifyKey.map(loadVerifyingKey)
            let check: ((Descriptor) throws -> Void)? = key.map { key in
                { descriptor in
                    do {
                        for line in try SignatureCheck.attached(to: descriptor, as: local, store: store, key: key).report { print(line) }
                    } catch {
                        throw VerifyFailure(description: "\(error); nothing was tagged")
                    }
                }
            }
            let report = try await registry.withClient(for: source, store: store) { client in
                try await Puller(store: store, client: client, progress: { progressBar(label: $0, total: $1) }, log: { print($0) })
                    .pull(
                        source, as: local,
                        referrerTypes: Set(
                            [ArtifactSigning.artifactType, OCIMediaType.cosignSimpleSigning] + Attestations.Attachment.Kind.allCases.map(\.artifactType)),
                        check: check)
            }
            let seconds = Date().timeIntervalSince(started)
            print("pulled \(source) as \(local) \(report.manifest.digest)")
            if !report.referrers.isEmpty { print("  \(report.referrers.count) signature(s) and attestation(s) pulled with it") }
            print(
                "  \(report.downloaded.count) downloaded (\(ProgressBar.bytes(report.bytesReceived)) in \(String(format: "%.1f", seconds)) s), \(report.present.count) already in the store, \(report.resumed.count) resumed"
            )
        }
    }
}
