import Foundation
import Testing
import VesselServer
import Yams
import VesselTestSupport

@Suite("vessel image and vessel test --in-image")
struct ImageCLITests {
    @Test("the digits image decodes pictures inside the container: its examples (a PNG, a JPEG) pass in the image as outside it")
    func imageModelInImage() async throws {
        let home = try TestSupport.makeTemporaryDirectory("digits-image-home")
        defer { TestSupport.remove(home) }
        let packed = try await TestSupport.vessel(["pack", TestSupport.packageRoot + "/Examples/digits"], home: home)
        #expect(packed.status == 0, "\(packed.standardError)")
        // The image carries the decoders' shared libraries (libturbojpeg, libpng16, libwebp).
        let tested = try await TestSupport.vessel(["test", "digits:1.0.0", "--in-image"], home: home)
        #expect(tested.status == 0, "\(tested.standardOutput) \(tested.standardError)")
        #expect(tested.standardOutput.contains("9 output(s) of the examples passed"), "\(tested.standardOutput)")
    }

    @Test(
        "the minilm image tokenizes text inside the container: its examples (served text in, the model's three inputs made there) pass in the image as outside it"
    )
    func textModelInImage() async throws {
        let home = try TestSupport.makeTemporaryDirectory("minilm-image-home")
        defer { TestSupport.remove(home) }
        let packed = try await TestSupport.vessel(["pack", TestSupport.packageRoot + "/Examples/minilm"], home: home)
        #expect(packed.status == 0, "\(packed.standardError)")
        let tested = try await TestSupport.vessel(["test", "minilm:1.0.0", "--in-image"], home: home)
        #expect(tested.status == 0, "\(tested.standardOutput) \(tested.standardError)")
        #expect(tested.standardOutput.contains("2 output(s) of the examples passed"), "\(tested.standardOutput)")
        // vessel predict, the other entry: text in, the same vector as examples/sentences.npy's first row.
        let predicted = try await TestSupport.vessel(["predict", "minilm:1.0.0", "-i", #"text=["A man is eating food."]"#, "--json"], home: home)
        #expect(predicted.status == 0, "\(predicted.standardError)")
        let object = try JSONSerialization.jsonObject(with: Data(predicted.standardOutput.utf8)) as? [String: Any]
        let vector = ((object?["outputs"] as? [[String: Any]])?.first?["data"] as? [Double]) ?? []
        let expected = try TestSupport.python(
            """
            import numpy as np; print(" ".join(str(x) for x in np.load("\(TestSupport.packageRoot)/Examples/minilm/examples/sentences.npy")[0]))
            """
        ).split(separator: " ").compactMap { Double($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
        #expect(vector.count == 384 && expected.count == 384 && zip(vector, expected).allSatisfy { abs($0 - $1) < 1e-4 })
    }

    @Test("the image of the bundled example runs its examples inside bubblewrap and chroot, and stops cleanly")
    func inImage() async throws {
        let home = try TestSupport.makeTemporaryDirectory("image-home")
        defer { TestSupport.remove(home) }
        #expect(try await TestSupport.vessel(["pack", TestSupport.exampleDirectory], home: home).status == 0)
        let archive = home + "/iris-image.tar"
        let built = try await TestSupport.vessel(["image", "iris:1.0.0", "-t", "iris-image:1.0.0", "-o", archive], home: home)
        #expect(built.status == 0, "\(built.standardError)")
        #expect(built.standardOutput.contains("built iris-image:1.0.0 sha256:"))
        #expect(built.standardOutput.contains("shared with iris:1.0.0"))
        // The image ships the serve-only runtime binary built beside vessel.
        #expect(built.standardOutput.contains("binary:        \(TestSupport.vesselBinary)-runtime"), "\(built.standardOutput)")
        // The archive loads as an image in skopeo.
        let inspect = try await TestSupport.run("skopeo", ["inspect", "oci-archive:\(archive)"])
        #expect(inspect.status == 0, "\(inspect.standardError)")
        #expect(inspect.standardOutput.contains("\"Architecture\": \"amd64\""))
        // The image verifies like an artifact, and lists as an image.
        #expect(try await TestSupport.vessel(["verify", "iris-image:1.0.0"], home: home).status == 0)
        #expect(try await TestSupport.vessel(["list"], home: home).standardOutput.contains("iris-image:1.0.0"))
        let inspected = try await TestSupport.vessel(["inspect", "iris-image:1.0.0"], home: home)
        #expect(inspected.status == 0, "\(inspected.standardError)")
        #expect(inspected.standardOutput.contains("entrypoint  /vessel/bin/vessel serve --verify-files /vessel/model.json /"))
        #expect(inspected.standardOutput.contains("user        65532:65532    ports 8080/tcp"))
        #expect(inspected.standardOutput.contains("model.onnx"))

        for runtime in ["bwrap", "chroot"] {
            let tested = try await TestSupport.vessel(["test", "iris-image:1.0.0", "--in-image", "--runtime", runtime], home: home)
            #expect(tested.status == 0, "\(runtime): \(tested.standardOutput) \(tested.standardError)")
            #expect(tested.standardOutput.contains("in-image: \(runtime)"))
            #expect(tested.standardOutput.contains("health check passed"))
            #expect(tested.standardOutput.contains("9 output(s) of the examples passed"))
            #expect(tested.standardOutput.contains("stopped with SIGTERM, exit 0"))
        }
        // Asking for an artifact builds its image on the way.
        let fromArtifact = try await TestSupport.vessel(["test", "iris:1.0.0", "--in-image"], home: home)
        #expect(fromArtifact.status == 0, "\(fromArtifact.standardError)")
        #expect(fromArtifact.standardOutput.contains("built image sha256:"))
    }

    @Test("--verify-files: a model file that differs from the artifact keeps the model from turning ready")
    func verifyFiles() async throws {
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

        let bad = try await TestSupport.vessel(["serve", "--verify-files", home + "/missing.json", model], home: home)
        #expect(bad.status != 0)
        #expect(bad.standardError.contains("cannot read --verify-files"))

        // The runtime binary has no YAML parser: an index without the manifest (an image built
        // before it carried one) is refused at once, naming what to do; no index at all too.
        let runtime = TestSupport.vesselBinary + "-runtime"
        let old = try await TestSupport.run(runtime, ["serve", "--verify-files", home + "/index.json", model])
        #expect(old.status != 0)
        #expect(old.standardError.contains("carries no manifest"), "\(old.standardError)")
        let none = try await TestSupport.run(runtime, ["serve", model])
        #expect(none.status != 0)
        #expect(none.standardError.contains("--verify-files"), "\(none.standardError)")
    }

    @Test("the runtime binary references nothing from full Foundation (so no ICU data in a static build)")
    func runtimeLinksFoundationEssentialsOnly() async throws {
        func undefined(_ binary: String) async throws -> [Substring] {
            let result = try await TestSupport.run("nm", ["-D", "--undefined-only", binary])
            #expect(result.status == 0, "\(result.standardError)")
            return result.standardOutput.split(separator: "\n")
        }
        // Swift symbols of the module `Foundation` are mangled `$s10Foundation…`; FoundationEssentials'
        // are `$s20FoundationEssentials…`. The full vessel uses Foundation, which shows the check can fail.
        let full = try await undefined(TestSupport.vesselBinary)
        #expect(full.contains { $0.contains("$s10Foundation") })
        let runtime = try await undefined(TestSupport.vesselBinary + "-runtime")
        #expect(!runtime.isEmpty)
        let foundation = runtime.filter { $0.contains("$s10Foundation") || $0.lowercased().contains("icu") }
        #expect(foundation.isEmpty, "\(foundation.prefix(10))")
    }
}

@Suite("vessel deploy --kubernetes")
struct DeployCLITests {
    @Test("Deployment, Service and InferenceService parse, pin the image by digest, probe the OIP health endpoints, and carry the resources")
    func kubernetes() async throws {
        let home = try TestSupport.makeTemporaryDirectory("deploy-home")
        defer { TestSupport.remove(home) }
        let model = try TestSupport.copyExample(to: home + "/model")
        var yaml = try String(contentsOfFile: model + "/vessel.yaml", encoding: .utf8)
        yaml = yaml.replacingOccurrences(
            of: "\nserving:\n", with: "\nserving:\n  replicas: 3\n  resources:\n    cpu: 500m\n    memory: 1Gi\n    cpu_limit: 2\n")
        try TestSupport.write(yaml, to: model + "/vessel.yaml")
        #expect(try await TestSupport.vessel(["pack", model, "--no-test"], home: home).status == 0)
        let built = try await TestSupport.vessel(["image", "iris:1.0.0", "-t", "iris-image:1.0.0", "--binary", "/usr/bin/true"], home: home)
        #expect(built.status == 0, "\(built.standardError)")
        let digest = try #require(built.standardOutput.split(separator: " ").first { $0.hasPrefix("sha256:") }.map { String($0.prefix(71)) })

        let result = try await TestSupport.vessel(
            ["deploy", "iris:1.0.0", "--kubernetes", "--image", "registry.example.com/ml/iris", "--namespace", "ml"], home: home)
        #expect(result.status == 0, "\(result.standardError)")
        let documents = try Yams.load_all(yaml: result.standardOutput).compactMap { $0 as? [String: Any] }
        #expect(documents.map { $0["kind"] as? String } == ["Deployment", "Service", "InferenceService"])
        #expect(documents.map { $0["apiVersion"] as? String } == ["apps/v1", "v1", "serving.kserve.io/v1beta1"])
        for document in documents {
            let metadata = try #require(document["metadata"] as? [String: Any])
            #expect(metadata["name"] as? String == "iris")
            #expect(metadata["namespace"] as? String == "ml")
        }
        let deployment = try #require(documents.first)
        let spec = try #require(deployment["spec"] as? [String: Any])
        #expect(spec["replicas"] as? Int == 3)
        let selector = try #require((spec["selector"] as? [String: Any])?["matchLabels"] as? [String: String])
        let template = try #require(spec["template"] as? [String: Any])
        let templateLabels = try #require((template["metadata"] as? [String: Any])?["labels"] as? [String: String])
        #expect(selector.allSatisfy { templateLabels[$0.key] == $0.value }, "the selector matches the pod labels")
        #expect(templateLabels["app.kubernetes.io/version"] == "1.0.0")
        let containers = try #require((template["spec"] as? [String: Any])?["containers"] as? [[String: Any]])
        let container = try #require(containers.first)
        #expect(container["image"] as? String == "registry.example.com/ml/iris@\(digest)")
        let resources = try #require(container["resources"] as? [String: [String: Any]])
        #expect(resources["requests"]?["cpu"] as? String == "500m")
        #expect(resources["requests"]?["memory"] as? String == "1Gi")
        #expect("\(resources["limits"]?["cpu"] ?? "")" == "2")
        #expect(resources["limits"]?["memory"] as? String == "1Gi")
        func probePath(_ name: String) -> String? { ((container[name] as? [String: Any])?["httpGet"] as? [String: Any])?["path"] as? String }
        #expect(probePath("livenessProbe") == "/v2/health/live")
        #expect(probePath("readinessProbe") == "/v2/health/ready")
        let ports = try #require(container["ports"] as? [[String: Any]])
        #expect(ports.first?["containerPort"] as? Int == 8080)
        let security = try #require(container["securityContext"] as? [String: Any])
        #expect(security["runAsNonRoot"] as? Bool == true)

        let service = documents[1]
        let serviceSpec = try #require(service["spec"] as? [String: Any])
        #expect(serviceSpec["selector"] as? [String: String] == selector)
        #expect((serviceSpec["ports"] as? [[String: Any]])?.first?["targetPort"] as? String == "http")

        let predictor = try #require((documents[2]["spec"] as? [String: Any])?["predictor"] as? [String: Any])
        let kserve = try #require((predictor["containers"] as? [[String: Any]])?.first)
        #expect(kserve["name"] as? String == "kserve-container")
        #expect(kserve["image"] as? String == "registry.example.com/ml/iris@\(digest)")

        // A bad quantity is a manifest error with its place.
        try TestSupport.write(yaml.replacingOccurrences(of: "memory: 1Gi", with: "memory: lots"), to: model + "/vessel.yaml")
        let invalid = try await TestSupport.vessel(["validate", model], home: home)
        #expect(invalid.status != 0)
        #expect(invalid.standardError.contains("`serving.resources.memory` `lots` is not a Kubernetes quantity"), "\(invalid.standardError)")
        let noTarget = try await TestSupport.vessel(["deploy", "iris:1.0.0"], home: home)
        #expect(noTarget.status != 0)
        #expect(noTarget.standardError.contains("--kubernetes"))
    }

    @Test(
        "--autoscale, --min-available and --service-monitor add an HPA on CPU and queued requests, a PDB and a ServiceMonitor; kubernetes-validate --strict accepts every core kind, and the published CRD schemas the KServe and Prometheus-operator kinds"
    )
    func scaling() async throws {
        let home = try TestSupport.makeTemporaryDirectory("deploy-scale")
        defer { TestSupport.remove(home) }
        #expect(try await TestSupport.vessel(["pack", TestSupport.exampleDirectory, "--no-test"], home: home).status == 0)
        #expect(try await TestSupport.vessel(["image", "iris:1.0.0", "-t", "iris-image:1.0.0", "--binary", "/usr/bin/true"], home: home).status == 0)
        let validator = TestSupport.packageRoot + "/.build/venv/bin/kubernetes-validate"
        for extra in [[], ["--autoscale", "2:8", "--queue-target", "4", "--cpu-target", "60", "--min-available", "1", "--service-monitor"]] {
            let result = try await TestSupport.vessel(["deploy", "iris:1.0.0", "--kubernetes", "--image", "registry.example.com/ml/iris"] + extra, home: home)
            #expect(result.status == 0, "\(result.standardError)")
            try TestSupport.write(result.standardOutput, to: home + "/manifests.yaml")
            // Kubernetes' own OpenAPI schemas (1.37), unknown fields refused; the KServe and
            // Prometheus-operator kinds have no schema there: their published CRDs' schemas check them.
            let validated = try await TestSupport.run(validator, ["--strict", home + "/manifests.yaml"])
            #expect(validated.status == 0, "\(validated.standardOutput) \(validated.standardError)")
            let kinds = extra.isEmpty ? ["deployment", "service"] : ["deployment", "service", "horizontalpodautoscaler", "poddisruptionbudget"]
            for kind in kinds {
                #expect(validated.standardOutput.contains("passed for resource \(kind)/iris"), "\(kind): \(validated.standardOutput)")
            }
            let custom = try await TestSupport.run(
                TestSupport.packageRoot + "/.build/venv/bin/python", [TestSupport.packageRoot + "/Tests/Fixtures/crds/validate.py", home + "/manifests.yaml"])
            #expect(custom.status == 0, "\(custom.standardOutput) \(custom.standardError)")
            for resource in extra.isEmpty ? ["inferenceservice/iris"] : ["inferenceservice/iris", "servicemonitor/iris"] {
                #expect(custom.standardOutput.contains("passed for \(resource)"), "\(resource): \(custom.standardOutput)")
            }
        }
        let documents = try Yams.load_all(yaml: try String(contentsOfFile: home + "/manifests.yaml", encoding: .utf8)).compactMap { $0 as? [String: Any] }
        #expect(
            documents.map { $0["kind"] as? String }
                == ["Deployment", "Service", "InferenceService", "HorizontalPodAutoscaler", "PodDisruptionBudget", "ServiceMonitor"])
        let deploymentSpec = try #require(documents[0]["spec"] as? [String: Any])
        #expect(deploymentSpec["replicas"] == nil, "with an autoscaler the Deployment leaves the count to it")
        let hpa = try #require(documents[3]["spec"] as? [String: Any])
        #expect(hpa["minReplicas"] as? Int == 2 && hpa["maxReplicas"] as? Int == 8)
        #expect((hpa["scaleTargetRef"] as? [String: String])?["name"] == "iris")
        let metrics = try #require(hpa["metrics"] as? [[String: Any]])
        #expect((((metrics[0]["resource"] as? [String: Any])?["target"]) as? [String: Any])?["averageUtilization"] as? Int == 60)
        let pods = try #require(metrics[1]["pods"] as? [String: Any])
        #expect((pods["metric"] as? [String: String])?["name"] == "vessel_inference_queued_requests")
        #expect((pods["target"] as? [String: String])?["averageValue"] == "4")
        let pdb = try #require(documents[4]["spec"] as? [String: Any])
        #expect(pdb["minAvailable"] as? Int == 1)
        #expect((pdb["selector"] as? [String: Any])?["matchLabels"] as? [String: String] == ["app.kubernetes.io/name": "iris"])
        let monitor = try #require(documents[5]["spec"] as? [String: Any])
        let endpoint = try #require((monitor["endpoints"] as? [[String: Any]])?.first)
        #expect(endpoint["port"] as? String == "http" && endpoint["path"] as? String == "/metrics")
        // The gauge the autoscaler reads is one the server exports.
        #expect(
            try String(contentsOfFile: TestSupport.packageRoot + "/Sources/VesselServer/Observability/ServerMetrics.swift", encoding: .utf8)
                .contains(#"descriptor("inference_queued", "requests""#))

        for (arguments, message) in [
            (["--autoscale", "5:2"], "--autoscale takes MIN:MAX replicas with 1 ≤ MIN ≤ MAX, not 5:2"),
            (["--autoscale", "2:8", "--cpu-target", "0"], "--cpu-target is a percentage from 1 to 100"),
            (["--queue-target", "4"], "--cpu-target and --queue-target go with --autoscale MIN:MAX"),
            (["--min-available", "0"], "--min-available must be at least 1")
        ] {
            let refused = try await TestSupport.vessel(["deploy", "iris:1.0.0", "--kubernetes"] + arguments, home: home)
            #expect(refused.status != 0 && refused.standardError.contains(message), "\(arguments): \(refused.standardError)")
        }
    }
}

@Suite("the image in Podman")
struct PodmanTests {
    @Test("podman loads the archive and runs it with runc: prediction, Docker health check, clean stop")
    func podman() async throws {
        let home = try TestSupport.makeTemporaryDirectory("podman-home")
        defer { TestSupport.remove(home) }
        #expect(try await TestSupport.vessel(["pack", TestSupport.exampleDirectory, "--no-test"], home: home).status == 0)
        let archive = home + "/iris-docker.tar"
        let built = try await TestSupport.vessel(["image", "iris:1.0.0", "-t", "iris-image:docker", "--format", "docker", "-o", archive], home: home)
        #expect(built.status == 0, "\(built.standardError)")
        let podman = try Podman(home: home)
        defer { podman.tearDown() }
        let load = try await podman(["load", "-i", archive])
        #expect(load.status == 0, "\(load.standardError)")
        #expect(load.standardOutput.contains("iris-image:docker"), "\(load.standardOutput)")
        let port = try LocalRegistry.freePort()
        let run = try await podman.start(["--name", "iris", "-p", "127.0.0.1:\(port):8080", "localhost/iris-image:docker"])
        #expect(run.status == 0, "\((try? String(contentsOfFile: home + "/podman-run.log", encoding: .utf8)) ?? "")")
        let ready = await TestSupport.poll(timeout: 60) {
            (try? LoopbackClient.request("GET", port: port, path: "/v2/health/ready", timeout: 2))?.status == 200
        }
        let logs = try await podman(["logs", "iris"])
        #expect(ready, "\(logs.standardError)")
        let body = Array(#"{"inputs":[{"name":"X","shape":[1,4],"datatype":"FP32","data":[[5.1,3.5,1.4,0.2]]}]}"#.utf8)
        let answer = try LoopbackClient.request("POST", port: port, path: "/v2/models/iris/infer", headers: ["Content-Type": "application/json"], body: body)
        #expect(answer.status == 200)
        #expect(answer.text.contains(#""name":"label","datatype":"INT64","shape":[1],"data":[0]"#), "\(answer.text)")
        let health = try await podman(["healthcheck", "run", "iris"])
        #expect(health.status == 0, "\(health.standardOutput) \(health.standardError)")
        let user = try await podman(["exec", "iris", "/vessel/bin/vessel", "health"])
        #expect(user.status == 0, "\(user.standardError)")
        #expect(try await podman(["stop", "-t", "20", "iris"]).status == 0)
        let exit = try await podman(["inspect", "iris", "--format", "{{.State.ExitCode}}"])
        #expect(exit.standardOutput.trimmingCharacters(in: .whitespacesAndNewlines) == "0", "SIGTERM ends the server cleanly: \(exit.standardOutput)")
        let inspect = try await podman(["image", "inspect", "localhost/iris-image:docker", "--format", "{{.Config.User}}"])
        #expect(inspect.standardOutput.trimmingCharacters(in: .whitespacesAndNewlines) == "65532:65532")
    }
}
