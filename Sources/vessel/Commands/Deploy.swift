import ArgumentParser
import Foundation
import VesselArtifact
import VesselImage
import VesselManifest
import VesselManifestYAML
import VesselONNX
import VesselServer
import VesselStore
import VesselTrust

struct Deploy: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print manifests that run a model's image on a cluster.",
        discussion: """
            --kubernetes prints a Deployment and a Service (probes on /v2/health/live and /v2/health/ready, resources from \
            serving.resources in vessel.yaml), and a KServe InferenceService for the same image; --autoscale, --min-available \
            and --service-monitor add a HorizontalPodAutoscaler, a PodDisruptionBudget and a ServiceMonitor; --signed-by PUB a \
            sigstore policy-controller ClusterImagePolicy requiring the images' signatures by that key. The image is \
            pinned by digest; REF may be an image or an artifact (whose image is built if the store has none).

            --mounted keeps the model out of the runtime's image: it names the artifact's ModelCar image (vessel image \
            --modelcar) and the runtime image (vessel image --runtime), building either if the store has none, and prints a \
            KServe ClusterServingRuntime for the runtime, an InferenceService whose storageUri is the ModelCar image, and a \
            Deployment that mounts the same image as an image volume. The runtime checks every mounted file against the \
            artifact's digests before it turns ready.
            """
    )

    @Argument(help: "An image or a model artifact: NAME[:TAG] or NAME@sha256:DIGEST.")
    var reference: String

    @Flag(help: "Kubernetes and KServe manifests.")
    var kubernetes = false

    @Option(
        help: ArgumentHelp(
            "Where the cluster pulls the image from, e.g. registry.example.com/team/iris (push it there with `vessel push`).", valueName: "repository"))
    var image: String?

    @Flag(help: "Mount the model from its ModelCar image into the runtime image, for KServe (storageUri: oci://…) and image volumes.")
    var mounted = false

    @Option(
        help: ArgumentHelp(
            "With --mounted: where the cluster pulls the runtime image from (push vessel-runtime:VERSION there); --image is then the ModelCar image's.",
            valueName: "repository"))
    var runtimeImage: String?

    @Option(help: "Namespace to put in the manifests.")
    var namespace: String?

    @Option(help: ArgumentHelp("Add a HorizontalPodAutoscaler for the Deployment, between MIN and MAX replicas.", valueName: "min:max"))
    var autoscale: String?

    @Option(help: ArgumentHelp("With --autoscale: the average CPU utilization to hold, percent of the request (default 70).", valueName: "percent"))
    var cpuTarget: Int?

    @Option(
        help: ArgumentHelp(
            "With --autoscale: also scale on requests waiting per pod (vessel_inference_queued_requests, served to the autoscaler by the Prometheus adapter).",
            valueName: "requests"))
    var queueTarget: Int?

    @Option(help: ArgumentHelp("Add a PodDisruptionBudget keeping at least N pods through voluntary disruptions.", valueName: "n"))
    var minAvailable: Int?

    @Flag(help: "Add a Prometheus-operator ServiceMonitor scraping /metrics every 15 s.")
    var serviceMonitor = false

    @Option(
        help: ArgumentHelp(
            "Add a sigstore policy-controller ClusterImagePolicy admitting the images only when signed by this public key (PEM); they must be signed by it already (vessel sign).",
            valueName: "pub"))
    var signedBy: String?

    @OptionGroup var store: StoreOptions

    func run() throws {
        try vessel.run {
            guard kubernetes else { throw ValidationError("choose a target: --kubernetes") }
            let autoscaling = try autoscale.map { text -> KubernetesManifests.Autoscaling in
                let parts = text.split(separator: ":", omittingEmptySubsequences: false).map { Int($0) }
                guard parts.count == 2, let low = parts[0], let high = parts[1], low >= 1, high >= low else {
                    throw ValidationError("--autoscale takes MIN:MAX replicas with 1 ≤ MIN ≤ MAX, not \(text)")
                }
                let cpu = cpuTarget ?? 70
                guard (1...100).contains(cpu) else { throw ValidationError("--cpu-target is a percentage from 1 to 100, not \(cpu)") }
                if let queueTarget, queueTarget < 1 { throw ValidationError("--queue-target must be at least 1, not \(queueTarget)") }
                return .init(minReplicas: low, maxReplicas: high, cpuPercent: cpu, queuedPerPod: queueTarget)
            }
            if autoscale == nil, queueTarget != nil || cpuTarget != nil { throw ValidationError("--cpu-target and --queue-target go with --autoscale MIN:MAX") }
            if let minAvailable, minAvailable < 1 { throw ValidationError("--min-available must be at least 1, not \(minAvailable)") }
            let store = try store.open()
            let reference = try parseReference(reference)
            if runtimeImage != nil, !mounted { throw ValidationError("--runtime-image goes with --mounted") }
            if mounted {
                try printMounted(reference, store: store, autoscaling: autoscaling)
                return
            }
            var descriptor = try store.resolve(reference)
            var localName = reference.description
            if descriptor.artifactType == ModelPack.artifactType {
                let artifact = try Artifact.load(reference, from: store)
                if let existing = try Self.image(of: artifact, role: .server, in: store) {
                    descriptor = existing.descriptor
                    localName = existing.name
                } else {
                    let tag = Reference(name: artifact.manifest.name + "-image", tag: artifact.manifest.version)
                    descriptor = try ImageBuilder(store: store).build(artifact, tag: tag, options: .init(dlopened: [BLASLibrary.candidates])).manifest
                    localName = tag.description
                    printError("built image \(tag) \(descriptor.digest)")
                }
            }
            let built = try RootFilesystem.load(descriptor, from: store)
            guard let yamlLayer = built.manifest.layers.first(where: { $0.annotations?[ModelPack.filepathAnnotation] == ManifestParser.fileName }) else {
                throw ValidationError("\(reference) is not an image built by vessel image (no vessel.yaml layer)")
            }
            let text = try Artifact.readSingleFile(yamlLayer, from: store, limit: Int64(Manifest.maximumBytes), reference: reference)
            let manifest = try ManifestParser.parse(data: Data(text), file: "\(reference)/vessel.yaml", baseDirectory: nil).manifest
            let modelBytes = built.manifest.layers.dropFirst().reduce(Int64(0)) { $0 + $1.size }
            let port = built.config.config?.exposedPorts?.keys.compactMap { Int($0.split(separator: "/").first ?? "") }.first ?? 8080
            let pinned = Self.pinned(self.image, local: localName, digest: descriptor.digest)
            if self.image == nil {
                printError("note: the manifests name the local tag \(localName); push the image with `vessel push` and pass --image REPOSITORY")
            }
            print(
                KubernetesManifests.render(
                    .init(
                        image: pinned, manifest: manifest, modelBytes: modelBytes, port: port, namespace: namespace, autoscaling: autoscaling,
                        minAvailable: minAvailable, serviceMonitor: serviceMonitor,
                        signaturePolicy: try signaturePolicy([(descriptor, localName)], store: store))),
                terminator: "")
        }
    }

    /// The model's ModelCar image and the runtime image, built if the store has none, and the
    /// manifests that mount one into the other.
    private func printMounted(_ reference: Reference, store: Store, autoscaling: KubernetesManifests.Autoscaling?) throws {
        let artifact = try Artifact.load(reference, from: store)
        let builder = ImageBuilder(store: store)
        let options = ImageBuilder.Options(dlopened: [BLASLibrary.candidates])
        let modelCar: (descriptor: Descriptor, name: String)
        if let existing = try Self.image(of: artifact, role: .modelCar, in: store) {
            modelCar = existing
        } else {
            let tag = Reference(name: artifact.manifest.name + "-modelcar", tag: artifact.manifest.version)
            modelCar = (try builder.buildModelCar(artifact, tag: tag, options: options).manifest, tag.description)
            printError("built ModelCar image \(tag) \(modelCar.descriptor.digest)")
        }
        let runtimeTag = Reference(name: "vessel-runtime", tag: Vessel.configuration.version)
        let runtime: Descriptor
        if let existing = try? store.resolve(runtimeTag) {
            runtime = existing
        } else {
            runtime = try builder.buildRuntime(tag: runtimeTag, options: options).manifest
            printError("built runtime image \(runtimeTag) \(runtime.digest)")
        }
        if image == nil || runtimeImage == nil {
            printError(
                "note: the manifests name local tags; push \(modelCar.name) and \(runtimeTag) with `vessel push` and pass --image and --runtime-image")
        }
        let modelBytes = artifact.imageManifest.layers.reduce(Int64(0)) { $0 + $1.size }
        print(
            KubernetesManifests.render(
                .init(
                    image: Self.pinned(runtimeImage, local: runtimeTag.description, digest: runtime.digest), manifest: artifact.manifest,
                    modelBytes: modelBytes, namespace: namespace, autoscaling: autoscaling, minAvailable: minAvailable, serviceMonitor: serviceMonitor,
                    mounted: .init(modelImage: Self.pinned(image, local: modelCar.name, digest: modelCar.descriptor.digest)),
                    signaturePolicy: try signaturePolicy([(runtime, runtimeTag.description), modelCar], store: store))), terminator: "")
    }

    /// Where the cluster pulls an image from, by digest: `repository` (the local name when none
    /// is given) at `digest`, unless it names a digest already.
    static func pinned(_ repository: String?, local: String, digest: VesselStore.Digest) -> String {
        let repository = repository ?? local
        return repository.contains("@") ? repository : "\(repository)@\(digest)"
    }

    /// With --signed-by: the policy for that key, once every image is signed by it in the store
    /// (a policy over unsigned images would turn every pod away).
    private func signaturePolicy(_ images: [(descriptor: Descriptor, name: String)], store: Store) throws -> KubernetesManifests.SignaturePolicy? {
        guard let signedBy else { return nil }
        let key = try loadVerifyingKey(signedBy)
        for (descriptor, name) in images {
            do { try ManifestSigning.verifyAttached(descriptor, name: name, store: store, key: key) } catch {
                throw ValidationError("--signed-by: \(error); sign it first (vessel sign \(name) --key PRIVATE-KEY) and push it again")
            }
        }
        return .init(publicKey: key.pem, hashAlgorithm: key.type == .ecdsaP384 ? "sha384" : "sha256")
    }

    /// An image in the store built from `artifact` for `role` (images built before roles were
    /// labelled are server images).
    static func image(of artifact: Artifact, role: ImageBuilder.Role, in store: Store) throws -> (descriptor: Descriptor, name: String)? {
        for entry in try store.list() where entry.descriptor.artifactType == nil {
            guard let data = try? store.readBlob(entry.descriptor, context: "manifest"),
                let manifest = try? JSONDecoder().decode(ImageManifest.self, from: data),
                let annotations = manifest.annotations,
                annotations[ImageBuilder.artifactLabel] == artifact.descriptor.digest.description,
                (annotations[ImageBuilder.roleLabel] ?? ImageBuilder.Role.server.rawValue) == role.rawValue
            else { continue }
            return (entry.descriptor, entry.refName)
        }
        return nil
    }
}
