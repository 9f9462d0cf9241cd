import ArgumentParser
import Foundation
import VesselRegistry
import VesselStore

/// Options every registry command shares.
struct RegistryOptions: ParsableArguments {
    @Flag(help: "Talk plain HTTP to the registry (a test registry on loopback); the default is HTTPS.")
    var insecure = false

    /// Runs `body` with a client for `reference`'s registry, shut down afterwards whatever happens.
    func withClient<T>(for reference: RegistryReference, store: Store, _ body: (RegistryClient) async throws -> T) async throws -> T {
        let client = RegistryClient(registry: reference.registry, apiHost: reference.apiHost, insecure: insecure,
                                    credentials: Credentials.find(registry: reference.registry, vesselHome: store.root))
        do {
            let result = try await body(client)
            await client.shutdown()
            return result
        } catch {
            await client.shutdown()
            throw error
        }
    }
}

func parseRegistryReference(_ text: String) throws -> RegistryReference {
    do { return try RegistryReference(parsing: text) } catch { throw ValidationError("\(error)") }
}

/// Runs an async command body, printing errors readably and exiting non-zero.
func runAsync(_ body: () async throws -> Void) async throws {
    do {
        try await body()
    } catch let error as ExitCode {
        throw error
    } catch let error as ValidationError {
        throw error
    } catch {
        printError("error: \(error)")
        throw ExitCode.failure
    }
}

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
                try await Pusher(store: store, client: client, chunkSize: Int64(chunkSize) << 20,
                                 progress: { progressBar(label: $0, total: $1) }, log: { print($0) })
                    .push(descriptor, to: target, mountFrom: mountFrom)
            }
            let seconds = Date().timeIntervalSince(started)
            print("pushed \(local) to \(target) \(descriptor.digest)")
            print("  \(report.uploaded.count) uploaded (\(ProgressBar.bytes(report.bytesSent)) sent in \(String(format: "%.1f", seconds)) s), \(report.existing.count) already there, \(report.mounted.count) mounted, \(report.resumed.count) resumed")
        }
    }
}

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

struct Login: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Save credentials for a registry ($VESSEL_HOME/auth.json, mode 0600).",
        discussion: "The password is read from standard input. ~/.docker/config.json is read as well, so `docker login` also works."
    )

    @Argument(help: "The registry host, e.g. ghcr.io or 127.0.0.1:5000.")
    var registry: String

    @Option(name: .shortAndLong, help: "User name.")
    var username: String

    @OptionGroup var store: StoreOptions

    func run() throws {
        try vessel.run {
            let data = FileHandle.standardInput.readDataToEndOfFile()
            let password = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .newlines)
            guard !password.isEmpty else { throw ValidationError("give the password on standard input (e.g. `echo $TOKEN | vessel login …`)") }
            let root = try store.open().root
            try Credentials.save(Credentials(username: username, password: password), registry: registry, vesselHome: root)
            print("saved credentials for \(registry) in \(root)/auth.json")
        }
    }
}

struct Logout: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Forget the credentials `vessel login` saved for a registry.")

    @Argument(help: "The registry host.")
    var registry: String

    @OptionGroup var store: StoreOptions

    func run() throws {
        try vessel.run {
            let root = try store.open().root
            try Credentials.save(nil, registry: registry, vesselHome: root)
            print("removed credentials for \(registry)")
        }
    }
}
