/// An OCI image configuration, with Docker's `Healthcheck`, which Docker and Podman honour.
///
/// See https://github.com/opencontainers/image-spec/blob/main/config.md and
/// https://github.com/moby/docker-image-spec/blob/main/spec.md
public struct ImageConfig: Codable, Hashable, Sendable {
    public struct Healthcheck: Codable, Hashable, Sendable {
        public var test: [String]
        /// Nanoseconds, as Docker stores them.
        public var interval: Int64
        public var timeout: Int64
        public var startPeriod: Int64
        public var retries: Int

        enum CodingKeys: String, CodingKey {
            case test = "Test", interval = "Interval", timeout = "Timeout", startPeriod = "StartPeriod", retries = "Retries"
        }
    }

    public struct Settings: Codable, Hashable, Sendable {
        public var user: String?
        public var exposedPorts: [String: EmptyObject]?
        public var env: [String]?
        public var entrypoint: [String]?
        public var cmd: [String]?
        public var workingDir: String?
        public var labels: [String: String]?
        public var stopSignal: String?
        public var healthcheck: Healthcheck?

        enum CodingKeys: String, CodingKey {
            case user = "User", exposedPorts = "ExposedPorts", env = "Env", entrypoint = "Entrypoint", cmd = "Cmd"
            case workingDir = "WorkingDir", labels = "Labels", stopSignal = "StopSignal", healthcheck = "Healthcheck"
        }
    }

    public struct RootFS: Codable, Hashable, Sendable {
        public var type: String
        public var diffIDs: [String]

        enum CodingKeys: String, CodingKey {
            case type, diffIDs = "diff_ids"
        }
    }

    public struct History: Codable, Hashable, Sendable {
        public var created: String?
        public var createdBy: String?
        public var comment: String?

        enum CodingKeys: String, CodingKey {
            case created, createdBy = "created_by", comment
        }
    }

    public var created: String?
    public var architecture: String
    public var os: String
    public var config: Settings?
    public var rootfs: RootFS
    public var history: [History]?
}

/// `{}`, the value type of `ExposedPorts`.
public struct EmptyObject: Codable, Hashable, Sendable {
    public init() {}
}
