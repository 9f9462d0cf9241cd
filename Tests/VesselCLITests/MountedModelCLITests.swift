import Foundation
import Testing
import VesselServer
import Yams
import VesselTestSupport

/// The model in its own image (`vessel image --modelcar`), served by the runtime alone
/// (`vessel image --runtime`), the way KServe's ModelCar and Kubernetes image volumes mount it.
@Suite("the model mounted into the runtime image")
struct MountedModelCLITests {
    static let request = Array(#"{"inputs":[{"name":"X","shape":[1,4],"datatype":"FP32","data":[[5.1,3.5,1.4,0.2]]}]}"#.utf8)

    func servesIris(port: Int, logs: () async -> String) async throws {
        let ready = await TestSupport.poll(timeout: 60, interval: 0.05) {
            (try? LoopbackClient.request("GET", port: port, path: "/v2/health/ready", timeout: 2))?.status == 200
        }
        let log = ready ? "" : await logs()
        #expect(ready, "\(log)")
        let answer = try LoopbackClient.request(
            "POST", port: port, path: "/v2/models/iris/infer", headers: ["Content-Type": "application/json"], body: Self.request)
        #expect(answer.status == 200)
        #expect(answer.text.contains(#""name":"label","datatype":"INT64","shape":[1],"data":[0]"#), "\(answer.text)")
    }

    @Test(
        "podman runs the runtime image on the ModelCar image: through KServe's own sidecar command in a pod, through an image volume, and never on a changed file"
    )
    func modelCarUnderPodman() async throws {
        let home = try TestSupport.makeTemporaryDirectory("modelcar-home")
        defer { TestSupport.remove(home) }
        #expect(try await TestSupport.vessel(["pack", TestSupport.exampleDirectory, "--no-test"], home: home).status == 0)
        let modelCar = try await TestSupport.vessel(["image", "iris:1.0.0", "--modelcar", "-o", home + "/modelcar.tar"], home: home)
        #expect(modelCar.status == 0, "\(modelCar.standardError)")
        #expect(modelCar.standardOutput.contains("built iris-modelcar:1.0.0"), "\(modelCar.standardOutput)")
        let runtime = try await TestSupport.vessel(["image", "--runtime", "-o", home + "/runtime.tar"], home: home)
        #expect(runtime.status == 0, "\(runtime.standardError)")
        #expect(runtime.standardOutput.contains("built vessel-runtime:"), "\(runtime.standardOutput)")
        #expect(runtime.standardOutput.contains("attached:      SLSA provenance and a CycloneDX SBOM"), "\(runtime.standardOutput)")

        let podman = try Podman(home: home)
        defer { podman.tearDown() }
        for archive in ["modelcar.tar", "runtime.tar"] {
            let load = try await podman(["load", "-i", home + "/" + archive])
            #expect(load.status == 0, "\(load.standardError)")
        }
        let runtimeImage = try #require(
            try await podman(["images", "--format", "{{.Repository}}:{{.Tag}}"]).standardOutput.split(separator: "\n").first { $0.contains("vessel-runtime") }
        ).description
        let serve = ["serve", "--verify-files", "/mnt/models/vessel/model.json", "iris=/mnt/models"]

        // KServe's ModelCar: the model image runs its sidecar command as KServe writes it, in a
        // pod sharing the process namespace, and the runtime reaches the model through /proc.
        let port = try LocalRegistry.freePort()
        #expect(try await podman(["pod", "create", "--name", "isvc", "--share", "pid,net,ipc,uts", "-p", "127.0.0.1:\(port):8080"]).status == 0)
        #expect(try await podman(["volume", "create", "provision"]).status == 0)
        let sidecar = try await podman.start([
            "--pod", "isvc", "--name", "modelcar", "-v", "provision:/mnt", "localhost/iris-modelcar:1.0.0",
            "sh", "-c", "ln -sf /proc/$$/root/models /mnt/models && sleep infinity"
        ])
        #expect(sidecar.status == 0, "\(sidecar.standardOutput) \(sidecar.standardError) \(podman.log)")
        let server = try await podman.start(["--pod", "isvc", "--name", "kserve-container", "-v", "provision:/mnt", runtimeImage] + serve)
        #expect(server.status == 0, "\(server.standardOutput) \(server.standardError) \(podman.log)")
        try await servesIris(port: port) { (try? await podman(["logs", "kserve-container"]).standardError) ?? "" }
        let user = try await podman(["inspect", "modelcar", "--format", "{{.Config.User}}"])
        #expect(user.standardOutput.trimmingCharacters(in: .whitespacesAndNewlines) == "65532:65532", "the sidecar runs as the runtime's user")

        // An image volume: the same image's root mounted read-only at /mnt/models.
        let volumePort = try LocalRegistry.freePort()
        let mounted = try await podman.start(
            [
                "--name", "image-volume", "-p", "127.0.0.1:\(volumePort):8080",
                "--mount", "type=image,source=localhost/iris-modelcar:1.0.0,destination=/mnt/models", runtimeImage
            ] + serve)
        #expect(mounted.status == 0, "\(mounted.standardOutput) \(mounted.standardError) \(podman.log)")
        try await servesIris(port: volumePort) { (try? await podman(["logs", "image-volume"]).standardError) ?? "" }
        // With no arguments the runtime image serves /mnt/models as `model`.
        let defaults = try await podman(["image", "inspect", runtimeImage, "--format", "{{json .Config.Cmd}}"])
        #expect(defaults.standardOutput.contains(#"["serve","--verify-files","/mnt/models/vessel/model.json","model=/mnt/models"]"#))

        // The same files with one byte changed: the runtime never turns ready, and says which.
        let mountPoint = try await podman(["image", "mount", "localhost/iris-modelcar:1.0.0"]).standardOutput.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(try await TestSupport.run("cp", ["-a", mountPoint, home + "/changed"]).status == 0)
        _ = try? await podman(["image", "unmount", "localhost/iris-modelcar:1.0.0"])
        let model = home + "/changed/model.onnx"
        var bytes = try #require(FileManager.default.contents(atPath: model))
        bytes[bytes.count - 1] ^= 1
        try bytes.write(to: URL(fileURLWithPath: model))
        let changedPort = try LocalRegistry.freePort()
        let changed = try await podman.start(
            [
                "--name", "changed", "-p", "127.0.0.1:\(changedPort):8080", "-v", home + "/changed:/mnt/models:ro", runtimeImage
            ] + serve)
        #expect(changed.status == 0, "\(changed.standardOutput) \(changed.standardError) \(podman.log)")
        var logs = ""
        let refused = await TestSupport.poll(timeout: 60, interval: 0.1) {
            logs = (try? await podman(["logs", "changed"]).standardError) ?? ""
            return logs.contains("model.onnx does not match the artifact")
        }
        #expect(refused, "\(logs)")
        let health = try? LoopbackClient.request("GET", port: changedPort, path: "/v2/health/ready", timeout: 2)
        #expect(health?.status != 200, "a changed file never turns ready")
    }

    @Test("the ModelCar image shares the artifact's blobs, links /models to its root, ships a static busybox and refuses what it cannot hold")
    func modelCarLayout() async throws {
        let home = try TestSupport.makeTemporaryDirectory("modelcar-layout")
        defer { TestSupport.remove(home) }
        #expect(try await TestSupport.vessel(["pack", TestSupport.exampleDirectory, "--no-test"], home: home).status == 0)
        #expect(try await TestSupport.vessel(["image", "iris:1.0.0", "--modelcar", "-o", home + "/mc.tar"], home: home).status == 0)
        let copy = try await TestSupport.run("skopeo", ["copy", "oci-archive:" + home + "/mc.tar", "oci:" + home + "/layout:mc"])
        #expect(copy.status == 0, "\(copy.standardError)")
        let bundle = home + "/bundle"
        let unpacked = try await TestSupport.run("umoci", ["unpack", "--rootless", "--image", home + "/layout:mc", bundle])
        #expect(unpacked.status == 0, "\(unpacked.standardError)")
        let root = bundle + "/rootfs"
        #expect((try? FileManager.default.destinationOfSymbolicLink(atPath: root + "/models")) == ".")
        #expect((try? FileManager.default.destinationOfSymbolicLink(atPath: root + "/bin/sh")) == "busybox")
        #expect(FileManager.default.fileExists(atPath: root + "/vessel/model.json"))
        #expect(FileManager.default.fileExists(atPath: root + "/model.onnx"))
        // The tools KServe's command uses, on the unpacked root (the podman test runs the command
        // itself): `sh`, `ln` and `sleep`, and /models leading to the model.
        let shell = try await TestSupport.run("chroot", [root, "/bin/sh", "-c", "ln -sf /models /link && test -f /link/model.onnx && sleep 0 && echo ok"])
        #expect(shell.standardOutput.contains("ok"), "\(shell.standardError)")

        // Each of the artifact's layers is a layer of the image, the same blob.
        let artifactLayers = try await layerDigests(home: home, reference: "iris:1.0.0")
        let imageLayers = try await layerDigests(home: home, reference: "iris-modelcar:1.0.0")
        #expect(Set(artifactLayers).isSubset(of: Set(imageLayers)))
        #expect(imageLayers.count == artifactLayers.count + 2, "busybox below, the file index above")

        for (arguments, message) in [
            (["image", "iris:1.0.0", "--modelcar", "--shell", "/usr/bin/true"], "is dynamically linked"),
            (["image", "iris:1.0.0", "--modelcar", "--shell", home + "/none"], "does not exist: install busybox-static"),
            (["image", "iris:1.0.0", "--modelcar", "--runtime"], "are two images"),
            (["image", "iris:1.0.0", "--runtime"], "give no artifact"),
            (["image", "iris:1.0.0", "--shell", "/usr/bin/true"], "--shell goes with --modelcar"),
            (["image"], "give the model artifact")
        ] {
            let refused = try await TestSupport.vessel(arguments, home: home)
            #expect(refused.status != 0 && refused.standardError.contains(message), "\(arguments): \(refused.standardError)")
        }
    }

    /// The layers of an image, or the files of an artifact, as `vessel inspect --json` lists them.
    func layerDigests(home: String, reference: String) async throws -> [String] {
        let inspected = try await TestSupport.vessel(["inspect", reference, "--json"], home: home)
        let json = try #require(try JSONSerialization.jsonObject(with: Data(inspected.standardOutput.utf8)) as? [String: Any], "\(inspected.standardError)")
        return (json["layers"] as? [[String: Any]] ?? json["files"] as? [[String: Any]] ?? []).compactMap { $0["digest"] as? String }
    }

    @Test(
        "deploy --mounted: a ClusterServingRuntime, an InferenceService naming the ModelCar image and a Deployment mounting it; Kubernetes', KServe's and the Prometheus operator's schemas accept them"
    )
    func deployMounted() async throws {
        let home = try TestSupport.makeTemporaryDirectory("deploy-mounted")
        defer { TestSupport.remove(home) }
        #expect(try await TestSupport.vessel(["pack", TestSupport.exampleDirectory, "--no-test"], home: home).status == 0)
        let result = try await TestSupport.vessel(
            [
                "deploy", "iris:1.0.0", "--kubernetes", "--mounted", "--image", "registry.example.com/ml/iris-modelcar", "--runtime-image",
                "registry.example.com/ml/vessel-runtime", "--autoscale", "1:4", "--min-available", "1", "--service-monitor"
            ], home: home)
        #expect(result.status == 0, "\(result.standardError)")
        #expect(result.standardError.contains("built ModelCar image iris-modelcar:1.0.0"), "\(result.standardError)")
        #expect(result.standardError.contains("built runtime image vessel-runtime:"), "\(result.standardError)")
        let manifests = home + "/manifests.yaml"
        try TestSupport.write(result.standardOutput, to: manifests)
        let core = try await TestSupport.run(TestSupport.packageRoot + "/.build/venv/bin/kubernetes-validate", ["--strict", manifests])
        #expect(core.status == 0, "\(core.standardOutput) \(core.standardError)")
        for kind in ["deployment", "service", "horizontalpodautoscaler", "poddisruptionbudget"] {
            #expect(core.standardOutput.contains("passed for resource \(kind)/iris"), "\(kind): \(core.standardOutput)")
        }
        let custom = try await TestSupport.run(
            TestSupport.packageRoot + "/.build/venv/bin/python", [TestSupport.packageRoot + "/Tests/Fixtures/crds/validate.py", manifests])
        #expect(custom.status == 0, "\(custom.standardOutput) \(custom.standardError)")
        for resource in ["clusterservingruntime/vessel", "inferenceservice/iris", "servicemonitor/iris"] {
            #expect(custom.standardOutput.contains("passed for \(resource)"), "\(resource): \(custom.standardOutput)")
        }

        // The schemas do refuse: a field KServe does not know, and a number where it wants a string.
        let broken = result.standardOutput.replacingOccurrences(
            of: "      runtime: vessel\n", with: "      runtime: vessel\n      runtimeVersion: 1\n      bogus: true\n")
        try TestSupport.write(broken, to: home + "/broken.yaml")
        let refusedSchema = try await TestSupport.run(
            TestSupport.packageRoot + "/.build/venv/bin/python", [TestSupport.packageRoot + "/Tests/Fixtures/crds/validate.py", home + "/broken.yaml"])
        #expect(refusedSchema.status == 1)
        #expect(
            refusedSchema.standardOutput.contains(
                "inferenceservice/iris: spec.predictor.model: Additional properties are not allowed ('bogus' was unexpected)"),
            "\(refusedSchema.standardOutput)")
        #expect(refusedSchema.standardOutput.contains("spec.predictor.model.runtimeVersion: 1 is not of type 'string'"), "\(refusedSchema.standardOutput)")

        let documents = try Yams.load_all(yaml: result.standardOutput).compactMap { $0 as? [String: Any] }
        #expect(
            documents.map { $0["kind"] as? String }
                == ["Deployment", "Service", "ClusterServingRuntime", "InferenceService", "HorizontalPodAutoscaler", "PodDisruptionBudget", "ServiceMonitor"])
        func digest(_ name: String) async throws -> String {
            let inspected = try await TestSupport.vessel(["inspect", name, "--json"], home: home)
            let json = try #require(try JSONSerialization.jsonObject(with: Data(inspected.standardOutput.utf8)) as? [String: Any])
            return try #require(json["digest"] as? String, "\(name): \(inspected.standardError)")
        }
        let modelCar = "registry.example.com/ml/iris-modelcar@" + (try await digest("iris-modelcar:1.0.0"))
        let runtime = "registry.example.com/ml/vessel-runtime@" + (try await digest("vessel-runtime:0.1.0"))

        let pod = try #require(((documents[0]["spec"] as? [String: Any])?["template"] as? [String: Any])?["spec"] as? [String: Any])
        let container = try #require((pod["containers"] as? [[String: Any]])?.first)
        #expect(container["image"] as? String == runtime)
        #expect(container["args"] as? [String] == ["serve", "--verify-files", "/mnt/models/vessel/model.json", "iris=/mnt/models"])
        let volume = try #require((pod["volumes"] as? [[String: Any]])?.first { $0["name"] as? String == "model" })
        #expect((volume["image"] as? [String: String])?["reference"] == modelCar)
        #expect(
            (container["volumeMounts"] as? [[String: Any]])?.contains { $0["mountPath"] as? String == "/mnt/models" && $0["readOnly"] as? Bool == true } == true
        )

        let servingRuntime = try #require(documents[2]["spec"] as? [String: Any])
        #expect(servingRuntime["protocolVersions"] as? [String] == ["v2"])
        #expect((servingRuntime["supportedModelFormats"] as? [[String: Any]])?.first?["name"] as? String == "onnx")
        let runtimeContainer = try #require((servingRuntime["containers"] as? [[String: Any]])?.first)
        #expect(runtimeContainer["image"] as? String == runtime)
        #expect((runtimeContainer["args"] as? [String])?.last == "{{.Name}}=/mnt/models")
        let model = try #require(((documents[3]["spec"] as? [String: Any])?["predictor"] as? [String: Any])?["model"] as? [String: Any])
        #expect(model["storageUri"] as? String == "oci://" + modelCar)
        #expect(model["runtime"] as? String == "vessel")

        // A second deploy finds both images in the store instead of building them again.
        let again = try await TestSupport.vessel(["deploy", "iris:1.0.0", "--kubernetes", "--mounted"], home: home)
        #expect(again.status == 0, "\(again.standardError)")
        #expect(!again.standardError.contains("built"), "\(again.standardError)")
        #expect(again.standardOutput.contains("storageUri: \"oci://iris-modelcar:1.0.0@"), "\(again.standardOutput)")
        let refused = try await TestSupport.vessel(["deploy", "iris:1.0.0", "--kubernetes", "--runtime-image", "r.example/rt"], home: home)
        #expect(refused.status != 0 && refused.standardError.contains("--runtime-image goes with --mounted"), "\(refused.standardError)")
    }
}
