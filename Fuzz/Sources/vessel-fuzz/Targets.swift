import Foundation
import VesselArtifact
import VesselManifestYAML
import VesselModel
import VesselONNX
@testable import VesselProcessing
@testable import VesselServer
import VesselManifest
import VesselStore
import VesselTensor

/// What Vessel reads from outside, one target each. A target hands the bytes to the code that
/// reads them in production and then uses what came back as production would; every error
/// thrown is an answer (a 400, a load error). A crash, a trap, a hang past libFuzzer's
/// `-timeout`, a leak or an out-of-bounds access is a finding.
enum FuzzTarget: String, CaseIterable {
    /// An ONNX model file: loaded (every attribute checked), then run once on small inputs.
    case onnx
    /// A `vessel import`-able archive (OCI image layout in tar): imported into an empty store,
    /// then every artifact in it loaded and verified.
    case archive
    /// An OCI image manifest (or index) stored beside a real artifact's blobs, then read as an
    /// artifact and walked as the store walks what it holds.
    case oci
    /// A `vessel.yaml`, on its own and inside the bundled iris example's directory.
    case manifest
    /// An OIP v2 inference body (JSON, or JSON then binary tensors), decoded, checked against a
    /// signature and encoded back; also read as MLflow's and Cog's request bodies.
    case oip
    /// An image element of a request (JPEG, PNG, WebP), decoded and turned upright.
    case image
    /// A `tokenizer.json`, then text through it.
    case tokenizer

    nonisolated(unsafe) static var selected = FuzzTarget.onnx

    /// Where targets that need files keep them: memory when the machine has it.
    static let scratch: String = {
        let base = FileManager.default.fileExists(atPath: "/dev/shm") ? "/dev/shm" : NSTemporaryDirectory()
        let path = "\(base)/vessel-fuzz-\(getpid())"
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        atexit { try? FileManager.default.removeItem(atPath: FuzzTarget.scratch) }
        return path
    }()

    /// The repository this was built from, for the bundled example.
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent().path

    /// Set-up before the first input; returns directories of seeds made here.
    func prepare() -> [String] {
        switch self {
        case .oci: OCITarget.prepare()
        default: []
        }
    }

    func run(_ bytes: [UInt8]) {
        switch self {
        case .onnx: Self.onnx(bytes)
        case .archive: Self.archive(bytes)
        case .oci: OCITarget.run(bytes)
        case .manifest: Self.manifest(bytes)
        case .oip: Self.oip(bytes)
        case .image: Self.image(bytes)
        case .tokenizer: Self.tokenizer(bytes)
        }
    }

    static func onnx(_ bytes: [UInt8]) {
        guard let model = try? ONNXModel(data: Data(bytes), directory: nil) else { return }
        // Small inputs of the declared types: dynamic dimensions 1, values 0…3 (so that a
        // shape or index input stays small), a run bounded in time as `serving.timeout_ms` is.
        var feeds: [String: Tensor] = [:]
        for input in model.inputs {
            guard input.nonTensorType == nil, let dtype = input.dtype else { return }
            let shape = (input.shape ?? []).map { dim -> Int in
                if case .fixed(let size) = dim { return size }
                return 1
            }
            guard let count = Tensor.checkedCount(of: shape), count <= 4096 else { return }
            feeds[input.name] =
                dtype == .string
                ? Tensor(strings: (0..<count).map { String($0 % 4) }, shape: shape)
                : Tensor(converting: (0..<count).map { Double($0 % 4) }, to: dtype, shape: shape)
        }
        _ = try? model.run(feeds, control: RunControl(timeout: .seconds(2)))
    }

    static func archive(_ bytes: [UInt8]) {
        let directory = "\(scratch)/archive"
        try? FileManager.default.removeItem(atPath: directory)
        try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = "\(directory)/in.tar"
        guard FileManager.default.createFile(atPath: path, contents: Data(bytes)), let store = try? Store(root: "\(directory)/store"),
            let imported = try? store.importArchive(from: path)
        else { return }
        for entry in imported {
            _ = try? store.verify(entry.descriptor)
            if let reference = entry.reference { _ = try? Artifact.load(descriptor: entry.descriptor, as: reference, from: store) }
        }
        _ = try? store.list()
        _ = try? store.collectGarbage()
    }

    static func manifest(_ bytes: [UInt8]) {
        _ = try? ManifestParser.parse(data: Data(bytes), file: "vessel.yaml", baseDirectory: nil)
        _ = try? ManifestParser.parse(data: Data(bytes), file: "vessel.yaml", baseDirectory: "\(repository)/Examples/iris")
    }

    /// A signature with one input of each kind a request can fill, for MLflow's and Cog's bodies.
    static let signature: Signature = {
        let json = #"""
            {"inputs":[{"name":"x","dtype":"float32","shape":[null,4]},
                       {"name":"k","dtype":"int64","shape":["batch"],"optional":true},
                       {"name":"text","dtype":"string","shape":[null],"optional":true}],
             "outputs":[{"name":"y","dtype":"float32","shape":[null]}]}
            """#
        return try! JSONDecoder().decode(Signature.self, from: Data(json.utf8))
    }()

    static func oip(_ bytes: [UInt8]) {
        // The first byte picks the framing: even, all JSON; odd, the next two give the
        // Inference-Header-Content-Length of a body with binary tensors after the JSON.
        guard let first = bytes.first else { return }
        var body = Array(bytes.dropFirst())
        var header: Int?
        if first & 1 == 1 {
            guard body.count >= 2 else { return }
            header = Int(body[0]) | Int(body[1]) << 8
            body.removeFirst(2)
        }
        if let request = try? OIPCodec.decodeRequest(body, headerLength: header) {
            // As the server checks a request against the served model's signature.
            try? signature.validate(request.inputs, allowNaN: false)
            let outputs = request.inputOrder.compactMap { name in request.inputs[name].map { (name, $0) } }
            _ = OIPCodec.encodeResponse(model: "m", version: "1", id: request.id, outputs: outputs) { request.binaryOutputs.contains($0) }
            _ = OIPCodec.encodeResponse(model: "m", version: "1", id: request.id, outputs: outputs) { _ in true }
        }
        if header == nil {
            if let inputs = try? MLflowAdapter.inputs(body, signature: signature) { try? signature.validate(inputs, allowNaN: false) }
            if let inputs = try? CogAdapter.inputs(body, signature: signature).inputs { try? signature.validate(inputs, allowNaN: false) }
        }
    }

    static func image(_ bytes: [UInt8]) {
        guard let pixels = try? ImageDecoding.decodeRGB(bytes, maxPixels: 1 << 22) else { return }
        if let orientation = ExifOrientation.read(jpeg: bytes) { _ = ExifOrientation.apply(orientation, to: pixels) }
    }

    static func tokenizer(_ bytes: [UInt8]) {
        // tokenizer.json up to the first zero byte, then the text to encode.
        let split = bytes.firstIndex(of: 0) ?? bytes.count
        guard let tokenizer = try? Tokenizer(json: Array(bytes[..<split])) else { return }
        let text = split < bytes.count ? String(decoding: bytes[(split + 1)...], as: UTF8.self) : "Hello, world! Ça va? 東京 🙂"
        guard let single = try? tokenizer.encode(text, maxLength: 64) else { return }
        let pair = try? tokenizer.encode(text, pair: "a second sentence", maxLength: 64)
        _ = tokenizer.pad([single] + (pair.map { [$0] } ?? []))
    }
}
