import Testing
@testable import VesselRegistry
import VesselStore

@Suite("registry references and challenges")
struct RegistryReferenceTests {
    @Test("references are read as Docker reads them")
    func parsing() throws {
        let cases: [(String, String, String, String?, String?)] = [
            ("ubuntu", "docker.io", "library/ubuntu", "latest", nil),
            ("ghcr.io/org/model:1.2", "ghcr.io", "org/model", "1.2", nil),
            ("127.0.0.1:5000/models/iris:1.0.0", "127.0.0.1:5000", "models/iris", "1.0.0", nil),
            ("localhost/iris", "localhost", "iris", "latest", nil),
            ("team/iris", "docker.io", "team/iris", "latest", nil),
            (
                "reg.example.com:443/a/b/c@sha256:" + String(repeating: "ab", count: 32), "reg.example.com:443", "a/b/c", nil,
                "sha256:" + String(repeating: "ab", count: 32)
            )
        ]
        for (text, registry, repository, tag, digest) in cases {
            let reference = try RegistryReference(parsing: text)
            #expect(reference.registry == registry, "\(text)")
            #expect(reference.repository == repository, "\(text)")
            #expect(reference.tag == tag, "\(text)")
            #expect(reference.digest == digest, "\(text)")
        }
        #expect(try RegistryReference(parsing: "ubuntu").apiHost == "registry-1.docker.io")
        for bad in ["Upper/Case", "host:5000/", "a//b", "x@sha256:short", "repo:bad tag", ""] {
            #expect(throws: RegistryReference.ParseError.self, "\(bad)") { try RegistryReference(parsing: bad) }
        }
    }

    @Test("WWW-Authenticate challenges, quoted and not")
    func challenges() {
        let (scheme, parameters) = RegistryClient.parseChallenge(
            #"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/ubuntu:pull""#)
        #expect(scheme == "Bearer")
        #expect(parameters["realm"] == "https://auth.docker.io/token")
        #expect(parameters["service"] == "registry.docker.io")
        #expect(parameters["scope"] == "repository:library/ubuntu:pull")
        let basic = RegistryClient.parseChallenge(#"Basic realm="vessel-test""#)
        #expect(basic.scheme == "Basic")
        #expect(basic.parameters["realm"] == "vessel-test")
        let unquoted = RegistryClient.parseChallenge("Bearer realm=https://t.example/token, service=reg")
        #expect(unquoted.parameters["realm"] == "https://t.example/token")
        #expect(unquoted.parameters["service"] == "reg")
    }

    @Test("registry error bodies become their message")
    func errors() {
        let text = #"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{}}]}"#
        #expect(RegistryClient.errorMessage(text, status: 404) == "MANIFEST_UNKNOWN: manifest unknown")
        #expect(RegistryClient.errorMessage("", status: 404) == "Not Found")
        #expect(
            Pusher.appending(digest: .init(parsing: "sha256:" + String(repeating: "0", count: 64))!, to: "http://h/v2/x/blobs/uploads/u?_state=abc")
                == "http://h/v2/x/blobs/uploads/u?_state=abc&digest=sha256%3A" + String(repeating: "0", count: 64))
    }
}
