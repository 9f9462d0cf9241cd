#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Crypto
import HTTPTypes
import Hummingbird
import Synchronization
import VesselONNX
import NIOCore
import VesselJSON
import VesselManifest
import VesselModel
import VesselStore
import VesselSystem
import VesselTensor
#if canImport(Glibc)
import Glibc
#endif

/// The browser pages (`GET /`, `/ui/models/{m}`): static shells with their CSS and JavaScript
/// inline (nothing from a CDN, no fonts), which read what to show from the two JSON routes below
/// — behind the bearer token like every other data route — and run models through the same
/// `/v2/models/{m}/infer` any client uses. `--no-ui` leaves all four unregistered.
extension InferenceServer {
    func homePage() -> Response {
        Response(
            status: .ok, headers: [.contentType: "text/html; charset=utf-8", .cacheControl: "no-cache"],
            body: .init(byteBuffer: ByteBuffer(string: PageAssets.page(title: "Vessel", script: "home"))))
    }

    func modelPage(_ context: BasicRequestContext) -> Response {
        let name = context.parameters.get("model") ?? ""
        guard models.contains(where: { $0.name == name }) else { return Self.error(404, "unknown model `\(name)`") }
        return Response(
            status: .ok, headers: [.contentType: "text/html; charset=utf-8", .cacheControl: "no-cache"],
            body: .init(byteBuffer: ByteBuffer(string: PageAssets.page(title: name + " · Vessel", script: "model"))))
    }

    /// `GET /ui/api/models`: each served model's name, state, version, digest and backend.
    func modelList() -> Response {
        let items: [JSONValue] = models.map { model in
            var fields: [String: JSONValue] = ["name": .string(model.name)]
            switch model.current {
            case .loading: fields["state"] = .string("loading")
            case .failed(let reason):
                fields["state"] = .string("failed")
                fields["reason"] = .string(reason)
            case .ready(let loaded, _, _):
                fields["state"] = .string(loaded.backend.unavailableReason == nil ? "ready" : "unavailable")
                fields.merge(Self.summary(loaded)) { $1 }
            }
            fields["signature"] = .string(configuration.signatures[model.name] ?? "not checked")
            return .object(fields)
        }
        return Self.json(.ok, Self.encode(.object(["models": .array(items)])))
    }

    /// `GET /ui/api/models/{m}`: everything the model page shows — the served and the model's
    /// signatures, the steps, the examples (inputs and expected outputs as OIP v2 tensors),
    /// metadata and files.
    func modelContract(_ context: BasicRequestContext) async -> Response {
        let model: ServedModel
        switch lookup(context, version: nil) {
        case .success(let found): model = found
        case .failure(let error): return Self.error(error)
        }
        guard case .ready(let loaded, _, _) = model.current else {
            return Self.error(503, "model `\(model.name)` is not ready")
        }
        let manifest = loaded.manifest
        var fields = Self.summary(loaded)
        fields["name"] = .string(model.name)
        fields["signature"] = .string(configuration.signatures[model.name] ?? "not checked")
        fields["served"] = Self.signature(loaded.signature, steps: manifest.preprocess)
        fields["model"] = Self.signature(loaded.modelSignature, steps: [])
        fields["preprocess"] = .array(manifest.preprocess.map(Self.step))
        fields["postprocess"] = .array(manifest.postprocess.map(Self.step))
        let digests = await FileDigests.of(loaded)
        let files = [(manifest.model.file, "model")] + manifest.files.map { ($0.path, $0.role.rawValue) }
        fields["files"] = .array(
            files.map { path, role in
                var entry: [String: JSONValue] = ["path": .string(path), "role": .string(role)]
                if let digest = digests[path] { entry["sha256"] = .string(digest) }
                return .object(entry)
            })
        var examples: [JSONValue] = []
        for example in (try? LoadedModel.examples(of: manifest, directory: loaded.directory)) ?? [] {
            func tensors(_ values: [String: Tensor]) -> JSONValue {
                .object(
                    values.mapValues { tensor in
                        let data: JSONValue =
                            tensor.dtype == .string
                            ? .array(tensor.strings.map { .string(Self.displayable($0)) })
                            : tensor.dtype == .bool ? .array(tensor.integers().map { .bool($0 != 0) }) : .numbers(tensor.doubles())
                        return .object(["datatype": .string(tensor.dtype.oipName), "shape": .numbers(tensor.shape.map(Double.init)), "data": data])
                    })
            }
            examples.append(.object(["name": .string(example.name), "inputs": tensors(example.inputs), "outputs": tensors(example.outputs)]))
        }
        fields["examples"] = .array(examples)
        return Self.json(.ok, Self.encode(.object(fields)))
    }

    static func summary(_ loaded: LoadedModel) -> [String: JSONValue] {
        var fields: [String: JSONValue] = [
            "version": .string(loaded.version), "platform": .string(loaded.backend.platform),
            "format": .string(loaded.manifest.model.format.rawValue)
        ]
        if let digest = loaded.digest { fields["digest"] = .string(digest) }
        if let description = loaded.manifest.description { fields["description"] = .string(description) }
        if let license = loaded.manifest.license { fields["license"] = .string(license) }
        if !loaded.manifest.authors.isEmpty { fields["authors"] = .array(loaded.manifest.authors.map(JSONValue.string)) }
        return fields
    }

    /// Inputs and outputs, each with how the page should ask for it: `image` (a BYTES input an
    /// `image` step decodes), `text` (other BYTES), or `tensor`.
    static func signature(_ signature: Signature, steps: [ProcessingStep]) -> JSONValue {
        let images = Set(steps.filter { $0.type == "image" }.compactMap { if case .string(let name)? = $0.parameters["input"] { name } else { nil } })
        func spec(_ spec: TensorSpec) -> JSONValue {
            var fields: [String: JSONValue] = [
                "name": .string(spec.name), "datatype": .string(spec.dtype.oipName),
                "shape": .array(spec.shape.map { if case .fixed(let size) = $0 { .number(Double(size)) } else { .number(-1) } }),
                "kind": .string(spec.dtype != .string ? "tensor" : images.contains(spec.name) ? "image" : "text")
            ]
            if let description = spec.description { fields["description"] = .string(description) }
            return .object(fields)
        }
        return .object(["inputs": .array(signature.inputs.map(spec)), "outputs": .array(signature.outputs.map(spec))])
    }

    static func step(_ step: ProcessingStep) -> JSONValue {
        func value(_ item: Value) -> JSONValue {
            switch item {
            case .null: .null
            case .bool(let flag): .bool(flag)
            case .int(let number): .number(Double(number))
            case .double(let number): .number(number)
            case .string(let text): .string(text)
            case .array(let items): .array(items.map(value))
            case .object(let members): .object(members.mapValues(value))
            }
        }
        return .object(["type": .string(step.type), "parameters": .object(step.parameters.mapValues(value))])
    }

    /// A BYTES element as the page can show it: an image's data URI with its real media type
    /// (an `<img>` does not sniff `application/octet-stream`).
    static func displayable(_ element: String) -> String {
        guard BytesElement.isBinary(element) else { return element }
        let bytes = BytesElement.bytes(element)
        let type: String? =
            bytes.starts(with: [0x89, 0x50, 0x4E, 0x47])
            ? "image/png"
            : bytes.starts(with: [0xFF, 0xD8, 0xFF])
                ? "image/jpeg"
                : bytes.count > 12 && bytes[8..<12].elementsEqual(Array("WEBP".utf8)) ? "image/webp" : nil
        return type.map { BytesElement.dataURI(bytes, mediaType: $0) } ?? element
    }

    static func encode(_ value: JSONValue) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return (try? encoder.encode(value)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
    }
}

/// Each file of a served model with its SHA-256, for the page: hashed once per loaded model off
/// the event loops (a multi-GiB model takes seconds), from the model directory or, for files
/// read in place, from their region of the store blob; a directory is listed without one.
enum FileDigests {
    private static let cache = Mutex<[String: [String: String]]>([:])

    static func of(_ loaded: LoadedModel) async -> [String: String] {
        let key = "\(loaded.name)@\(loaded.version)@\(loaded.digest ?? loaded.directory)"
        if let known = cache.withLock({ $0[key] }) { return known }
        let computed = await BlockingThreads.shared.run { () -> [String: String] in
            var out: [String: String] = [:]
            for path in [loaded.manifest.model.file] + loaded.manifest.files.map(\.path) {
                if let region = loaded.inPlace[path] {
                    out[path] = hash(region.path, offset: region.offset, length: region.length)
                } else {
                    out[path] = hash(loaded.directory + "/" + path, offset: 0, length: nil)
                }
            }
            return out.compactMapValues { $0 }
        }
        cache.withLock { $0[key] = computed }
        return computed
    }

    /// nil for anything but a readable regular file.
    private static func hash(_ path: String, offset: Int, length: Int?) -> String? {
        // Regular files only (a directory, a FIFO or a missing file has no digest here).
        guard let fd = try? FileSystem.openForReading(path), let size = try? FileSystem.size(of: path) else { return nil }
        defer { close(fd) }
        var hasher = SHA256()
        var remaining = length ?? (Int(size) - offset)
        var position = offset
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        while remaining > 0 {
            let want = min(buffer.count, remaining)
            let count = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress, want, off_t(position)) }
            guard count > 0 else { return nil }
            buffer.withUnsafeBytes { hasher.update(bufferPointer: UnsafeRawBufferPointer(rebasing: $0[..<count])) }
            remaining -= count
            position += count
        }
        return Digest(bytes: hasher.finalize()).hex
    }
}
