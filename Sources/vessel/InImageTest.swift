import ArgumentParser
import Foundation
import VesselArtifact
import VesselImage
import VesselManifest
import VesselManifestYAML
import VesselModel
import VesselONNX
import VesselProcessing
import VesselServer
import VesselStore
#if canImport(Glibc)
import Glibc
#endif

/// `vessel test REF --in-image`: the packaged model tested in the environment it ships in.
///
/// The image (built from the artifact first when REF is one) is unpacked into a root filesystem
/// as a container runtime does it, its entrypoint started isolated there with the image's own
/// user, environment and working directory, its health check run, the bundled examples sent
/// over HTTP, and the server stopped with SIGTERM, which must end it cleanly.
enum InImageTest {
    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    static func run(reference text: String, store: Store, runtime requested: ContainerProcess.Runtime?, readyTimeout: Double) throws -> Bool {
        let reference = try parseReference(text)
        var descriptor = try store.resolve(reference)
        if descriptor.artifactType == ModelPack.artifactType {
            let artifact = try Artifact.load(reference, from: store)
            let built = try ImageBuilder(store: store).build(artifact, tag: nil, options: .init(dlopened: [BLASLibrary.candidates]))
            descriptor = built.manifest
            print("built image \(descriptor.digest) from \(reference)")
        }
        guard let runtime = requested ?? ContainerProcess.availableRuntime() else {
            throw Failure(description: "no container runtime found: install bubblewrap (apt-get install bubblewrap), or run as root for chroot")
        }
        let image = try RootFilesystem.load(descriptor, from: store)
        guard let settings = image.config.config else { throw Failure(description: "the image config has no runtime settings") }

        let work = NSTemporaryDirectory() + "vessel-in-image-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        defer { try? FileManager.default.removeItem(atPath: work) }
        let root = work + "/rootfs"
        try image.unpack(from: store, into: root)
        let manifest = try ManifestParser.load(directory: root).manifest
        let examples = try LoadedModel.examples(of: manifest, directory: root)
        let port = try freePort()
        print(
            "in-image: \(runtime.rawValue), \(image.manifest.layers.count) layers unpacked, \(((settings.entrypoint ?? []) + (settings.cmd ?? [])).joined(separator: " ")) on 127.0.0.1:\(port)"
        )

        let started = Date()
        let container = try ContainerProcess(
            root: root, config: settings, overrides: ["VESSEL_HOST": "127.0.0.1", "VESSEL_PORT": String(port)],
            runtime: runtime, logPath: work + "/container.log")
        defer { if container.isRunning { container.stop(grace: 2) } }
        // Ready within `readyTimeout`, or the reason it is not.
        var ready = false
        while Date().timeIntervalSince(started) < readyTimeout {
            guard container.isRunning else {
                throw Failure(description: "the container exited with status \(container.terminationStatus) before it was ready:\n\(container.logTail())")
            }
            if let response = try? LoopbackClient.request("GET", port: port, path: "/v2/health/ready", timeout: 2), response.status == 200 {
                ready = true
                break
            }
            // A model that failed to load stays failed: no use waiting out the timeout.
            if let response = try? LoopbackClient.request("GET", port: port, path: "/v2/models/\(manifest.name)", timeout: 2),
                response.status == 503, response.text.contains("failed to load")
            {
                throw Failure(description: "the model failed to load in the image:\n\(container.logTail())")
            }
            usleep(50_000)
        }
        guard ready else { throw Failure(description: "not ready after \(Int(readyTimeout)) s (--ready-timeout):\n\(container.logTail())") }
        print(String(format: "ready in %.2f s", Date().timeIntervalSince(started)))

        if let check = settings.healthcheck, check.test.first == "CMD" || check.test.first == "CMD-SHELL" {
            var probe = settings
            probe.entrypoint = check.test.first == "CMD" ? Array(check.test.dropFirst()) : ["/bin/sh", "-c"] + check.test.dropFirst()
            probe.cmd = nil
            // As Docker judges it: unhealthy only after `Retries` failures in a row (3 when unset).
            // Each probe may take the image's Timeout, but at least 30 s: a loaded test machine
            // starts a process more slowly than a production node.
            let attempts = max(1, check.retries == 0 ? 3 : check.retries)
            let probeTimeout = max(30, Double(check.timeout) / 1e9)
            var failure = ""
            for attempt in 1...attempts {
                let health = try ContainerProcess(
                    root: root, config: probe, overrides: ["VESSEL_PORT": String(port)], runtime: runtime,
                    logPath: work + "/healthcheck-\(attempt).log")
                let status = health.wait(timeout: probeTimeout)
                if status == 0 { failure = ""; break }
                failure =
                    "the image's health check failed \(attempt) time(s) in a row (\(status.map { "exit \($0)" } ?? "no answer in \(Int(probeTimeout)) s")): \(health.logTail())"
                if attempt < attempts { sleep(1) }
            }
            guard failure.isEmpty else { throw Failure(description: failure) }
            print("health check passed: \(check.test.dropFirst().joined(separator: " "))")
        }

        let report = ExampleRun.over(
            port: port, model: manifest.name, version: manifest.version, examples: examples,
            inputOrder: try ProcessingPlan(manifest: manifest).served.inputs.map(\.name))
        printReport(report)
        let status = container.stop(grace: 30)
        guard status == 0 else {
            throw Failure(description: "the server did not stop cleanly on SIGTERM (\(status.map { "exit \($0)" } ?? "killed")):\n\(container.logTail())")
        }
        print("stopped with SIGTERM, exit 0")
        return report.passed
    }

    static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw Failure(description: "socket: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
        }
        guard bound else { throw Failure(description: "cannot find a free port: \(String(cString: strerror(errno)))") }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}
