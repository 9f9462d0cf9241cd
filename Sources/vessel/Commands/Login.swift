import ArgumentParser
import Foundation
import VesselRegistry
import VesselStore

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
