// swift-tools-version:6.1
import Foundation
import PackageDescription

/// libFuzzer targets for what Vessel reads from outside: models, archives, OCI manifests,
/// `vessel.yaml`, request bodies, images and tokenizers. A package of its own, because every
/// module it reaches is compiled with `-sanitize=fuzzer,address`, which no other build wants:
/// `scripts/fuzz.sh` builds it and runs the targets.
///
/// Vessel is the package one directory up; SwiftPM names a path dependency after its directory.
let vessel = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().lastPathComponent.lowercased()

let package = Package(
    name: "VesselFuzz",
    platforms: [.macOS(.v15)],
    dependencies: [.package(path: "..")],
    targets: [
        // Declares libFuzzer's LLVMFuzzerRunDriver, which the sanitizer's link brings in.
        .systemLibrary(name: "CFuzzerDriver"),
        .executableTarget(
            name: "vessel-fuzz",
            dependencies: [
                "CFuzzerDriver",
                .product(name: "VesselONNX", package: vessel),
                .product(name: "VesselStore", package: vessel),
                .product(name: "VesselArtifact", package: vessel),
                .product(name: "VesselManifest", package: vessel),
                .product(name: "VesselManifestYAML", package: vessel),
                .product(name: "VesselModel", package: vessel),
                .product(name: "VesselProcessing", package: vessel),
                .product(name: "VesselServer", package: vessel),
                .product(name: "VesselTensor", package: vessel)
            ],
            swiftSettings: [.enableUpcomingFeature("ExistentialAny")]
        )
    ]
)
