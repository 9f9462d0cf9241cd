import Foundation
import Testing
import VesselServer
import VesselTestSupport

@Suite("vessel image and vessel test --in-image")
struct ImageCLITests {
    @Test("the image of the bundled example runs its examples inside bubblewrap and chroot, and stops cleanly")
    func inImage() throws {
        let home = try TestSupport.makeTemporaryDirectory("image-home")
        defer { TestSupport.remove(home) }
        #expect(try TestSupport.vessel(["pack", TestSupport.exampleDirectory], home: home).status == 0)
        let archive = home + "/iris-image.tar"
        let built = try TestSupport.vessel(["image", "iris:1.0.0", "-t", "iris-image:1.0.0", "-o", archive], home: home)
        #expect(built.status == 0, "\(built.standardError)")
        #expect(built.standardOutput.contains("built iris-image:1.0.0 sha256:"))
        #expect(built.standardOutput.contains("shared with iris:1.0.0"))
        // The archive loads as an image in skopeo.
        let inspect = try TestSupport.run("skopeo", ["inspect", "oci-archive:\(archive)"])
        #expect(inspect.status == 0, "\(inspect.standardError)")
        #expect(inspect.standardOutput.contains("\"Architecture\": \"amd64\""))
        // The image verifies like an artifact, and lists as an image.
        #expect(try TestSupport.vessel(["verify", "iris-image:1.0.0"], home: home).status == 0)
        #expect(try TestSupport.vessel(["list"], home: home).standardOutput.contains("iris-image:1.0.0"))

        for runtime in ["bwrap", "chroot"] {
            let tested = try TestSupport.vessel(["test", "iris-image:1.0.0", "--in-image", "--runtime", runtime], home: home)
            #expect(tested.status == 0, "\(runtime): \(tested.standardOutput) \(tested.standardError)")
            #expect(tested.standardOutput.contains("in-image: \(runtime)"))
            #expect(tested.standardOutput.contains("health check passed"))
            #expect(tested.standardOutput.contains("6 output(s) of the examples passed"))
            #expect(tested.standardOutput.contains("stopped with SIGTERM, exit 0"))
        }
        // Asking for an artifact builds its image on the way.
        let fromArtifact = try TestSupport.vessel(["test", "iris:1.0.0", "--in-image"], home: home)
        #expect(fromArtifact.status == 0, "\(fromArtifact.standardError)")
        #expect(fromArtifact.standardOutput.contains("built image sha256:"))
    }

    @Test("--verify-files: a model file that differs from the artifact keeps the model from turning ready")
    func verifyFiles() throws {
        let home = try TestSupport.makeTemporaryDirectory("verify-home")
        defer { TestSupport.remove(home) }
        let model = try TestSupport.copyExample(to: home + "/model")
        let index = """
        {"artifact":"sha256:0000000000000000000000000000000000000000000000000000000000000000","name":"iris","version":"1.0.0",
         "files":[{"path":"labels.txt","digest":"sha256:1111111111111111111111111111111111111111111111111111111111111111","size":3}]}
        """
        try TestSupport.write(index, to: home + "/index.json")
        let server = try ServeProcess([model, "--verify-files", home + "/index.json"], home: home)
        defer { kill(server.process.processIdentifier, SIGTERM); _ = server.waitForExit() }
        let port = try server.waitForReady("failed to load")
        #expect(server.standardError.contains("model file labels.txt does not match the artifact"), "\(server.standardError)")
        #expect(try LoopbackClient.request("GET", port: port, path: "/v2/health/ready").status == 503)
        #expect(try LoopbackClient.request("GET", port: port, path: "/v2/health/live").status == 200)

        let bad = try TestSupport.vessel(["serve", "--verify-files", home + "/missing.json", model], home: home)
        #expect(bad.status != 0)
        #expect(bad.standardError.contains("cannot read --verify-files"))
    }
}
