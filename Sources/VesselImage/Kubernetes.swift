import Foundation
public import VesselManifest
import VesselStore

/// Kubernetes manifests for a model image: a Deployment and a Service, and a KServe
/// `InferenceService` as the other common way to scale out. Probes use the OIP health endpoints;
/// resources come from `serving.resources` in vessel.yaml.
public enum KubernetesManifests {
    public struct Input: Sendable {
        /// A pullable reference, best pinned by digest (`registry/name@sha256:…`).
        public var image: String
        public var manifest: Manifest
        /// Bytes of the model's files, for the default memory request.
        public var modelBytes: Int64
        public var port: Int
        public var namespace: String?
        public var autoscaling: Autoscaling?
        /// A PodDisruptionBudget keeping at least this many pods through voluntary disruptions.
        public var minAvailable: Int?
        /// A Prometheus-operator `ServiceMonitor` scraping `/metrics`.
        public var serviceMonitor: Bool
        /// The model in its own image, mounted into the runtime image (`image`).
        public var mounted: Mounted?
        /// A sigstore policy-controller `ClusterImagePolicy` admitting the images only when
        /// signed by this key.
        public var signaturePolicy: SignaturePolicy?

        public init(
            image: String, manifest: Manifest, modelBytes: Int64, port: Int = 8080, namespace: String? = nil, autoscaling: Autoscaling? = nil,
            minAvailable: Int? = nil, serviceMonitor: Bool = false, mounted: Mounted? = nil, signaturePolicy: SignaturePolicy? = nil
        ) {
            self.mounted = mounted
            self.signaturePolicy = signaturePolicy
            self.image = image
            self.manifest = manifest
            self.modelBytes = modelBytes
            self.port = port
            self.namespace = namespace
            self.autoscaling = autoscaling
            self.minAvailable = minAvailable
            self.serviceMonitor = serviceMonitor
        }
    }

    /// The model in a ModelCar image (`vessel image --modelcar`), served by the runtime image:
    /// KServe mounts it through its ModelCar sidecar (`storageUri: oci://…`), a Deployment as an
    /// image volume (Kubernetes 1.33+, ImageVolume).
    public struct Mounted: Sendable {
        /// A pullable reference to the ModelCar image, best pinned by digest.
        public var modelImage: String
        /// The ClusterServingRuntime's name.
        public var runtimeName: String

        public init(modelImage: String, runtimeName: String = "vessel") {
            self.modelImage = modelImage
            self.runtimeName = runtimeName
        }
    }

    /// The key a sigstore policy-controller `ClusterImagePolicy` requires the images' signatures
    /// by: cosign's tag form (`sha256-<hex>.sig`), which `vessel sign` writes and the
    /// policy-controller checks for a key.
    public struct SignaturePolicy: Sendable {
        /// The public key, PEM.
        public var publicKey: String
        /// sha256, or sha384 for an ECDSA P-384 key.
        public var hashAlgorithm: String

        public init(publicKey: String, hashAlgorithm: String) {
            self.publicKey = publicKey
            self.hashAlgorithm = hashAlgorithm
        }
    }

    /// A HorizontalPodAutoscaler (autoscaling/v2) for the Deployment: on CPU, and on requests
    /// waiting per pod (`vessel_inference_queued_requests`, a pods metric as the Prometheus
    /// adapter serves it from the scrape).
    public struct Autoscaling: Sendable {
        public var minReplicas: Int
        public var maxReplicas: Int
        /// Average CPU utilization, percent of the request.
        public var cpuPercent: Int
        /// Average requests waiting per pod; nil for CPU alone.
        public var queuedPerPod: Int?

        public init(minReplicas: Int, maxReplicas: Int, cpuPercent: Int = 70, queuedPerPod: Int? = nil) {
            self.minReplicas = minReplicas
            self.maxReplicas = maxReplicas
            self.cpuPercent = cpuPercent
            self.queuedPerPod = queuedPerPod
        }
    }

    /// The metric the autoscaler reads per pod: the server's gauge of requests waiting for a slot.
    public static let queueMetric = "vessel_inference_queued_requests"

    /// A DNS-1035 label from the model name: lowercase letters, digits and `-`, at most 63.
    public static func resourceName(_ name: String) -> String {
        var result = ""
        for character in name.lowercased() {
            if character.isASCII, character.isLetter || character.isNumber { result.append(character) } else if !result.hasSuffix("-") { result.append("-") }
        }
        while let first = result.first, !first.isLetter { result.removeFirst() }
        result = String(result.prefix(63))
        while result.hasSuffix("-") { result.removeLast() }
        return result.isEmpty ? "model" : result
    }

    /// The resources to ask for: vessel.yaml's, else 1 CPU (no CPU limit, so the server is not
    /// throttled) and 256 MiB plus twice the model, as both memory request and limit.
    static func resources(_ input: Input) -> YAML {
        let declared = input.manifest.serving.resources
        let defaultMemory = "\(256 + Int((2 * input.modelBytes + (1 << 20) - 1) >> 20))Mi"
        let memory = declared.memory ?? defaultMemory
        var requests: [(String, YAML)] = [("cpu", .string(declared.cpu ?? "1")), ("memory", .string(memory))]
        var limits: [(String, YAML)] = []
        if let cpu = declared.cpuLimit { limits.append(("cpu", .string(cpu))) }
        limits.append(("memory", .string(declared.memoryLimit ?? memory)))
        requests = requests.filter { !($0.0 == "cpu" && $0.1 == .string("")) }
        return .map([("requests", .map(requests)), ("limits", .map(limits))])
    }

    static func probe(_ path: String, period: Int, failures: Int, initialDelay: Int = 0) -> YAML {
        .map([
            ("httpGet", .map([("path", .string(path)), ("port", .string("http"))])),
            ("initialDelaySeconds", .int(initialDelay)), ("periodSeconds", .int(period)), ("timeoutSeconds", .int(3)),
            ("failureThreshold", .int(failures))
        ])
    }

    /// The server's container; `arguments` replace the image's command (the runtime image's
    /// `serve` for a mounted model). A serving runtime's container names no resources: KServe
    /// takes each InferenceService's.
    static func container(_ input: Input, name: String, arguments: [String]? = nil, modelVolume: Bool = false, withResources: Bool = true) -> YAML {
        var mounts: [YAML] = [.map([("name", .string("tmp")), ("mountPath", .string("/tmp"))])]
        if modelVolume {
            mounts.append(.map([("name", .string("model")), ("mountPath", .string(ImageBuilder.Mounted.path)), ("readOnly", .bool(true))]))
        }
        return .map(
            [
                ("name", .string(name)),
                ("image", .string(input.image))
            ]
                + (arguments.map { [("args", .list($0.map { .string($0) }))] } ?? []) + [
                    ("ports", .list([.map([("name", .string("http")), ("containerPort", .int(input.port)), ("protocol", .string("TCP"))])])),
                    ("env", .list([.map([("name", .string("VESSEL_PORT")), ("value", .string(String(input.port)))])]))
                ] + (withResources ? [("resources", resources(input))] : []) + [
                    // Loading (and checking every file) can take a while for a large model: the startup
                    // probe holds liveness off until the server answers at all.
                    ("startupProbe", probe("/v2/health/live", period: 2, failures: 150)),
                    ("livenessProbe", probe("/v2/health/live", period: 10, failures: 3)),
                    ("readinessProbe", probe("/v2/health/ready", period: 5, failures: 2)),
                    (
                        "securityContext",
                        .map([
                            ("runAsNonRoot", .bool(true)), ("runAsUser", .int(65532)), ("runAsGroup", .int(65532)),
                            ("allowPrivilegeEscalation", .bool(false)), ("readOnlyRootFilesystem", .bool(true)),
                            ("capabilities", .map([("drop", .list([.string("ALL")]))])),
                            ("seccompProfile", .map([("type", .string("RuntimeDefault"))]))
                        ])
                    ),
                    ("volumeMounts", .list(mounts))
                ])
    }

    /// A KServe ClusterServingRuntime for the runtime image: ONNX models over the Open Inference
    /// Protocol v2, served from /mnt/models under the InferenceService's name.
    static func servingRuntime(_ input: Input, mounted: Mounted) -> YAML {
        let runtimeContainer = container(
            input, name: "kserve-container", arguments: ImageBuilder.Mounted.serveArguments(name: "{{.Name}}"), withResources: false)
        return .map([
            ("apiVersion", .string("serving.kserve.io/v1alpha1")),
            ("kind", .string("ClusterServingRuntime")),
            ("metadata", .map([("name", .string(mounted.runtimeName)), ("labels", .map([("app.kubernetes.io/managed-by", .string("vessel"))]))])),
            (
                "spec",
                .map([
                    (
                        "annotations",
                        .map([("prometheus.kserve.io/port", .string(String(input.port))), ("prometheus.kserve.io/path", .string("/metrics"))])
                    ),
                    (
                        "supportedModelFormats",
                        .list([.map([("name", .string("onnx")), ("version", .string("1")), ("autoSelect", .bool(true)), ("priority", .int(1))])])
                    ),
                    ("protocolVersions", .list([.string("v2")])),
                    ("containers", .list([runtimeContainer])),
                    ("volumes", .list([tmpVolume]))
                ])
            )
        ])
    }

    static let tmpVolume: YAML = .map([("name", .string("tmp")), ("emptyDir", .map([("medium", .string("Memory")), ("sizeLimit", .string("64Mi"))]))])

    /// Deployment, Service and InferenceService, as one multi-document YAML stream.
    public static func render(_ input: Input) -> String {
        let name = resourceName(input.manifest.name)
        let labels: YAML = .map([
            ("app.kubernetes.io/name", .string(name)),
            ("app.kubernetes.io/version", .string(input.manifest.version)),
            ("app.kubernetes.io/managed-by", .string("vessel"))
        ])
        let selector: YAML = .map([("app.kubernetes.io/name", .string(name))])
        func metadata() -> YAML {
            var fields: [(String, YAML)] = [("name", .string(name))]
            if let namespace = input.namespace { fields.append(("namespace", .string(namespace))) }
            fields.append(("labels", labels))
            return .map(fields)
        }
        let tmp = Self.tmpVolume
        let tmpVolumes: YAML = .list([tmp])
        // A mounted model: the runtime serves what is at /mnt/models, under the model's name.
        let serveArguments = input.mounted.map { _ in ImageBuilder.Mounted.serveArguments(name: input.manifest.name) }
        let podVolumes: YAML =
            if let mounted = input.mounted {
                .list([
                    tmp,
                    .map([
                        ("name", .string("model")),
                        ("image", .map([("reference", .string(mounted.modelImage)), ("pullPolicy", .string("IfNotPresent"))]))
                    ])
                ])
            } else { tmpVolumes }
        let deployment: YAML = .map([
            ("apiVersion", .string("apps/v1")),
            ("kind", .string("Deployment")),
            ("metadata", metadata()),
            (
                "spec",
                .map(
                    // With an autoscaler the Deployment names no replica count, so applying it
                    // again does not undo what the autoscaler chose.
                    (input.autoscaling == nil ? [("replicas", .int(input.manifest.serving.replicas))] : []) + [
                        ("selector", .map([("matchLabels", selector)])),
                        (
                            "template",
                            .map([
                                ("metadata", .map([("labels", labels)])),
                                (
                                    "spec",
                                    .map([
                                        // vessel serve drains requests in flight for up to 30 s after SIGTERM.
                                        ("terminationGracePeriodSeconds", .int(40)),
                                        ("containers", .list([container(input, name: name, arguments: serveArguments, modelVolume: input.mounted != nil)])),
                                        ("volumes", podVolumes)
                                    ])
                                )
                            ])
                        )
                    ])
            )
        ])
        let service: YAML = .map([
            ("apiVersion", .string("v1")),
            ("kind", .string("Service")),
            ("metadata", metadata()),
            (
                "spec",
                .map([
                    ("selector", selector),
                    ("ports", .list([.map([("name", .string("http")), ("port", .int(80)), ("targetPort", .string("http")), ("protocol", .string("TCP"))])]))
                ])
            )
        ])
        let predictor: YAML =
            if let mounted = input.mounted {
                // KServe's ModelCar: the model image runs as a sidecar sharing the pod's process
                // namespace, and /mnt/models in the runtime's container leads into it.
                .map([
                    ("minReplicas", .int(input.manifest.serving.replicas)),
                    (
                        "model",
                        .map([
                            ("modelFormat", .map([("name", .string("onnx"))])),
                            ("runtime", .string(mounted.runtimeName)),
                            ("storageUri", .string("oci://" + mounted.modelImage)),
                            ("resources", resources(input))
                        ])
                    )
                ])
            } else {
                .map([
                    ("minReplicas", .int(input.manifest.serving.replicas)),
                    ("containers", .list([container(input, name: "kserve-container")])),
                    ("volumes", tmpVolumes)
                ])
            }
        let inferenceService: YAML = .map([
            ("apiVersion", .string("serving.kserve.io/v1beta1")),
            ("kind", .string("InferenceService")),
            ("metadata", metadata()),
            ("spec", .map([("predictor", predictor)]))
        ])
        var extras: [YAML] = []
        if let scaling = input.autoscaling {
            var metrics: [YAML] = [
                .map([
                    ("type", .string("Resource")),
                    (
                        "resource",
                        .map([
                            ("name", .string("cpu")),
                            ("target", .map([("type", .string("Utilization")), ("averageUtilization", .int(scaling.cpuPercent))]))
                        ])
                    )
                ])
            ]
            if let queued = scaling.queuedPerPod {
                metrics.append(
                    .map([
                        ("type", .string("Pods")),
                        (
                            "pods",
                            .map([
                                ("metric", .map([("name", .string(queueMetric))])),
                                ("target", .map([("type", .string("AverageValue")), ("averageValue", .string(String(queued)))]))
                            ])
                        )
                    ]))
            }
            extras.append(
                .map([
                    ("apiVersion", .string("autoscaling/v2")),
                    ("kind", .string("HorizontalPodAutoscaler")),
                    ("metadata", metadata()),
                    (
                        "spec",
                        .map([
                            (
                                "scaleTargetRef",
                                .map([("apiVersion", .string("apps/v1")), ("kind", .string("Deployment")), ("name", .string(name))])
                            ),
                            ("minReplicas", .int(scaling.minReplicas)),
                            ("maxReplicas", .int(scaling.maxReplicas)),
                            ("metrics", .list(metrics))
                        ])
                    )
                ]))
        }
        if let minAvailable = input.minAvailable {
            extras.append(
                .map([
                    ("apiVersion", .string("policy/v1")),
                    ("kind", .string("PodDisruptionBudget")),
                    ("metadata", metadata()),
                    ("spec", .map([("minAvailable", .int(minAvailable)), ("selector", .map([("matchLabels", selector)]))]))
                ]))
        }
        if let policy = input.signaturePolicy {
            // Every image the pods run, by repository: any tag, any digest.
            let repositories = [input.image] + (input.mounted.map { [$0.modelImage] } ?? [])
            let globs = repositories.map { reference in
                reference.split(separator: "@").first.map(String.init) ?? reference
            }.flatMap { [$0 + ":**", $0 + "@**"] }
            extras.append(
                .map([
                    ("apiVersion", .string("policy.sigstore.dev/v1beta1")),
                    ("kind", .string("ClusterImagePolicy")),
                    ("metadata", .map([("name", .string(name + "-signed")), ("labels", .map([("app.kubernetes.io/managed-by", .string("vessel"))]))])),
                    (
                        "spec",
                        .map([
                            ("images", .list(globs.map { .map([("glob", .string($0))]) })),
                            (
                                "authorities",
                                .list([
                                    .map([
                                        ("name", .string("vessel-key")),
                                        ("key", .map([("data", .string(policy.publicKey)), ("hashAlgorithm", .string(policy.hashAlgorithm))]))
                                    ])
                                ])
                            )
                        ])
                    )
                ]))
        }
        if input.serviceMonitor {
            extras.append(
                .map([
                    ("apiVersion", .string("monitoring.coreos.com/v1")),
                    ("kind", .string("ServiceMonitor")),
                    ("metadata", metadata()),
                    (
                        "spec",
                        .map([
                            ("selector", .map([("matchLabels", selector)])),
                            ("endpoints", .list([.map([("port", .string("http")), ("path", .string("/metrics")), ("interval", .string("15s"))])]))
                        ])
                    )
                ]))
        }
        var header =
            "# \(input.manifest.name) \(input.manifest.version), generated by vessel deploy --kubernetes.\n"
            + "# Apply the Deployment and Service (plain Kubernetes), or the InferenceService (KServe), not both.\n"
            + (extras.isEmpty ? "" : "# The autoscaler, disruption budget and ServiceMonitor go with the Deployment.\n")
            + (input.signaturePolicy == nil
                ? "" : "# The ClusterImagePolicy (sigstore policy-controller) admits these images only when signed by the key (vessel sign).\n")
        var documents = [deployment, service, inferenceService]
        if let mounted = input.mounted {
            header +=
                "# The model is the ModelCar image \(mounted.modelImage), served by the runtime image \(input.image):\n"
                + "# the Deployment mounts it as an image volume (Kubernetes 1.33+ with ImageVolume, containerd 2.1+ or CRI-O);\n"
                + "# the InferenceService names it as storageUri, served by the ClusterServingRuntime `\(mounted.runtimeName)` (KServe with\n"
                + "# enableModelcar: true; uidModelcar: 65532 if your configuration sets one, as the runtime runs as 65532).\n"
                + "# The runtime turns ready only once every model file matches the image's file index.\n"
            documents.insert(servingRuntime(input, mounted: mounted), at: 2)
        }
        return header + (documents + extras).map { "---\n" + $0.render(indent: 0) }.joined()
    }
}

/// Just enough YAML to write manifests: block mappings and sequences, and scalars quoted
/// whenever a plain scalar could be read as something other than the string it is.
indirect enum YAML: Equatable {
    case string(String)
    case int(Int)
    case bool(Bool)
    case list([YAML])
    case map([(String, YAML)])

    static func == (lhs: YAML, rhs: YAML) -> Bool {
        switch (lhs, rhs) {
        case (.string(let a), .string(let b)): a == b
        case (.int(let a), .int(let b)): a == b
        case (.bool(let a), .bool(let b)): a == b
        case (.list(let a), .list(let b)): a == b
        case (.map(let a), .map(let b)): a.count == b.count && zip(a, b).allSatisfy { $0.0 == $1.0 && $0.1 == $1.1 }
        default: false
        }
    }

    func render(indent: Int) -> String {
        let pad = String(repeating: " ", count: indent)
        switch self {
        case .map(let pairs):
            return pairs.map { key, value in
                switch value {
                case .map(let inner) where !inner.isEmpty: "\(pad)\(Self.scalar(key)):\n" + value.render(indent: indent + 2)
                case .list(let items) where !items.isEmpty: "\(pad)\(Self.scalar(key)):\n" + value.render(indent: indent)
                default: "\(pad)\(Self.scalar(key)): \(value.inline)\n"
                }
            }.joined()
        case .list(let items):
            return items.map { item in
                switch item {
                case .map(let pairs) where !pairs.isEmpty:
                    // The first key shares the dash's line.
                    let body = item.render(indent: indent + 2)
                    return pad + "- " + body.dropFirst(indent + 2)
                case .list(let inner) where !inner.isEmpty:
                    return pad + "-\n" + item.render(indent: indent + 2)
                default:
                    return "\(pad)- \(item.inline)\n"
                }
            }.joined()
        default:
            return pad + inline + "\n"
        }
    }

    var inline: String {
        switch self {
        case .string(let text): Self.scalar(text)
        case .int(let value): String(value)
        case .bool(let value): value ? "true" : "false"
        case .list: "[]"
        case .map: "{}"
        }
    }

    static func scalar(_ text: String) -> String {
        let reserved = ["", "~", "null", "true", "false", "yes", "no", "on", "off", "y", "n"]
        let special =
            text.contains(where: { ":#{}[],&*!|>'\"%@`\n\\".contains($0) }) || text.first == "-" || text.first == "?"
            || text.first == " " || text.last == " "
        let numeric = Double(text) != nil || Int(text) != nil || text.hasPrefix("0x") || text.hasPrefix("0o") || text.hasPrefix(".")
        if reserved.contains(text.lowercased()) || special || numeric {
            // A JSON string is a valid YAML double-quoted scalar, escapes and all.
            return (try? CanonicalJSON.encode(text)).map { String(decoding: $0, as: UTF8.self) } ?? "\"\""
        }
        return text
    }
}
