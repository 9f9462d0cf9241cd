import ArgumentParser
import Foundation
import VesselImage
import VesselManifest
import VesselModel
import VesselServer
import VesselServeCommand
import VesselModelSources
import VesselArtifact
import VesselStore
import VesselTrust

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Serve models over the Open Inference Protocol v2 (KServe/Triton REST), with health, metrics and logs.",
        discussion: """
            Each model is served under the name in its vessel.yaml (ALIAS=REF to rename). Settings also come from \
            VESSEL_HOST and VESSEL_PORT. SIGTERM or SIGINT stops accepting, turns readiness off, and lets requests \
            in flight finish.
            """
    )

    @Argument(help: ArgumentHelp("Artifacts (NAME[:TAG], NAME@DIGEST) or model directories, optionally ALIAS=….", valueName: "ref-or-dir"))
    var models: [String]

    @OptionGroup var options: ServeOptions

    @Option(
        name: .customLong("require-signature"),
        help: ArgumentHelp(
            "A public key (PEM): serve only artifacts in the store with a signature that verifies with it (`vessel sign`), or with --verify-files an image's files whose signature it carries; anything else stops the server before it listens.",
            valueName: "pub"))
    var requireSignature: String?

    @OptionGroup var store: StoreOptions

    func run() async throws {
        let index = try options.fileIndex()
        // An image's files carry their signatures in the index; artifacts in the store beside them.
        let signatures =
            if let index {
                try FileIndexSignature.require(index, keyPath: requireSignature, servedAs: try ServeOptions.splitAlias(models.first ?? "").alias)
            } else {
                try requireSignature.map(checkSignatures) ?? [:]
            }
        try await options.serve(signatures: signatures) {
            guard let index else { return try models.map { try modelSource($0, store: store) } }
            guard models.count == 1, case let (alias, root) = try ServeOptions.splitAlias(models[0]), FileSystem.isDirectory(root) else {
                throw ValidationError("--verify-files needs exactly one model directory")
            }
            // An index from an older image has no manifest: read the vessel.yaml beside the files.
            return [index.manifest == nil ? try .directory(root, alias: alias, verifying: index) : try .unpacked(root: root, index: index, alias: alias)]
        }
    }

    /// Every model must be a stored artifact signed with the key; the first that is not stops
    /// the server with the reason, before it listens or loads anything.
    /// Returns what was verified, by served name (for the pages).
    private func checkSignatures(_ keyPath: String) throws -> [String: String] {
        var verified: [String: String] = [:]
        try vessel.run {
            let key = try loadVerifyingKey(keyPath)
            for model in models {
                let (alias, target) = try ServeOptions.splitAlias(model)
                guard !FileSystem.isDirectory(target) else {
                    throw ValidationError("--require-signature serves signed artifacts only; \(target) is a directory (pack and sign it)")
                }
                let (store, reference, _) = try store.resolve(target)
                let artifact = try Artifact.load(reference, from: store, verifyLayers: false)
                let label = try ArtifactSigning.verifyAttached(artifact, store: store, key: key)
                verified[alias ?? artifact.manifest.name] = "\(label) verified with key \(key.hint.prefix(12))… at start"
                printError("\(reference): signature verified with key \(key.hint.prefix(12))…")
            }
        }
        return verified
    }
}
