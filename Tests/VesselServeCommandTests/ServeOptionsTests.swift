import ArgumentParser
import Foundation
import Testing
import VesselServer
import VesselServeCommand
import VesselTestSupport

/// What `vessel serve` and the image's runtime make of their options and environment.
@Suite("serve options")
struct ServeOptionsTests {
    func options(_ arguments: [String]) throws -> ServeOptions { try ServeOptions.parse(arguments) }

    @Test("flags win over VESSEL_HOST and VESSEL_PORT, which win over the defaults")
    func precedence() throws {
        let defaults = try options([]).configuration(environment: [:])
        #expect(defaults.host == "127.0.0.1" && defaults.port == 8080 && defaults.token == nil)
        let environment = try options([]).configuration(environment: ["VESSEL_HOST": "0.0.0.0", "VESSEL_PORT": "9000"])
        #expect(environment.host == "0.0.0.0" && environment.port == 9000)
        let flags = try options(["--host", "::1", "--port", "0", "--idle-timeout", "2.5", "--max-connections", "7"])
            .configuration(environment: ["VESSEL_HOST": "0.0.0.0", "VESSEL_PORT": "9000"])
        #expect(flags.host == "::1" && flags.port == 0 && flags.idleTimeout == .milliseconds(2500) && flags.maxConnections == 7)
    }

    @Test("a token file holds one visible-ASCII token; whitespace around it is trimmed")
    func tokenFile() throws {
        let directory = try TestSupport.makeTemporaryDirectory("serve-options")
        defer { TestSupport.remove(directory) }
        try TestSupport.write("  s3cr3t-token\n", to: directory + "/good")
        #expect(try options(["--token-file", directory + "/good"]).configuration(environment: [:]).token == "s3cr3t-token")
        for (name, content, message) in [("empty", "\n\n", "is empty"), ("spaced", "two words\n", "visible ASCII"), ("lines", "a\nb\n", "visible ASCII")] {
            try TestSupport.write(content, to: directory + "/" + name)
            #expect { try options(["--token-file", directory + "/" + name]).configuration(environment: [:]) } throws: { "\($0)".contains(message) }
        }
        #expect { try options(["--token-file", directory + "/missing"]).configuration(environment: [:]) } throws: { "\($0)".contains("cannot read") }
    }

    @Test(
        "out-of-range settings are refused, naming the option",
        arguments: [
            (["--port", "70000"], "the port must be 0…65535"),
            (["--idle-timeout", "0"], "--idle-timeout must be above 0"),
            (["--max-connections", "0"], "--max-connections must be at least 1"),
            (["--grace-seconds=-1"], "--grace-seconds must be 0…86400"),
            (["--max-body-bytes", "0"], "--max-body-bytes must be at least 1")
        ])
    func ranges(arguments: [String], message: String) throws {
        #expect { try options(arguments).configuration(environment: [:]) } throws: { "\($0)".contains(message) }
        #expect { try options([]).configuration(environment: ["VESSEL_PORT": "not-a-port"]) } throws: { "\($0)".contains("the port must be") }
    }

    @Test("ALIAS=REF splits only at a valid alias")
    func aliases() throws {
        #expect(try ServeOptions.splitAlias("prod=iris:1.0.0") == ("prod", "iris:1.0.0"))
        #expect(try ServeOptions.splitAlias("Examples/iris") == (nil, "Examples/iris"))
        #expect(throws: ValidationError.self) { try ServeOptions.splitAlias("bad alias!=iris") }
    }
}
