import ArgumentParser
import Foundation
import VesselRegistry
import VesselStore

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
