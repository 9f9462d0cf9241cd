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
        let client = RegistryClient(
            registry: reference.registry, apiHost: reference.apiHost, insecure: insecure,
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
