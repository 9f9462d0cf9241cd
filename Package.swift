// swift-tools-version:6.1
import PackageDescription

/// One list of settings so every target is built the same way.
let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("InternalImportsByDefault"),
    .enableUpcomingFeature("MemberImportVisibility"),
]

let package = Package(
    name: "Vessel",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "vessel", targets: ["vessel"]),
        .library(name: "VesselTensor", targets: ["VesselTensor"]),
        .library(name: "VesselManifest", targets: ["VesselManifest"]),
        .library(name: "VesselStore", targets: ["VesselStore"]),
        .library(name: "VesselArtifact", targets: ["VesselArtifact"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
    ],
    targets: [
        .target(name: "VesselTensor", swiftSettings: swiftSettings),
        .target(name: "CVesselSystem"),
        .target(
            name: "VesselManifest",
            dependencies: ["VesselTensor", .product(name: "Yams", package: "Yams")],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "VesselStore",
            dependencies: ["CVesselSystem", .product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "VesselArtifact",
            dependencies: ["VesselStore", "VesselManifest"],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "vessel",
            dependencies: [
                "VesselArtifact", "VesselStore", "VesselManifest", "VesselTensor",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: swiftSettings
        ),
        // Test targets list CVesselSystem because SwiftPM does not hand them the C module map
        // of a dependency's dependency, which testable builds need.
        .target(name: "VesselTestSupport", path: "Tests/VesselTestSupport", swiftSettings: swiftSettings),
        .testTarget(name: "VesselTensorTests", dependencies: ["VesselTensor"], swiftSettings: swiftSettings),
        .testTarget(name: "VesselManifestTests", dependencies: ["VesselManifest", "VesselTestSupport", "CVesselSystem"], swiftSettings: swiftSettings),
        .testTarget(name: "VesselStoreTests", dependencies: ["VesselStore", "VesselTestSupport", "CVesselSystem"], swiftSettings: swiftSettings),
        .testTarget(
            name: "VesselArtifactTests",
            dependencies: ["VesselArtifact", "VesselStore", "VesselManifest", "VesselTestSupport", "CVesselSystem"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "VesselCLITests",
            dependencies: ["vessel", "VesselStore", "VesselTestSupport", "CVesselSystem"],
            swiftSettings: swiftSettings
        ),
    ]
)
