// swift-tools-version:6.1
import PackageDescription

/// One list of settings so every target is built the same way.
let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("InternalImportsByDefault"),
    .enableUpcomingFeature("MemberImportVisibility")
]

/// Code generation for Haswell and later (AVX2, FMA): only for the kernel copy that VesselONNX
/// calls after checking the CPU. Other architectures build the copy plain and never pick it.
/// And for AVX-512 with VNNI (Cascade Lake, Ice Lake, Sapphire Rapids, Zen 4 and 5): the GEMM
/// copy with 16-lane floats and `vpdpbusd`. Cascade Lake is the smallest set of features that
/// has VNNI; other CPU names would let LLVM use instructions some of those CPUs lack.
#if arch(x86_64)
let haswell: [SwiftSetting] = [.unsafeFlags(["-target-cpu", "haswell"])]
let avx512: [SwiftSetting] = [.unsafeFlags(["-target-cpu", "cascadelake"])]
#else
let haswell: [SwiftSetting] = []
let avx512: [SwiftSetting] = []
#endif

/// The kernel modules are compiled with -O whatever the configuration, and without
/// cross-module optimization: with it, a release build serialized their bodies and VesselONNX
/// made its own specialized clones of them, compiled for VesselONNX's baseline CPU (the half
/// narrowing ran as a compiler-rt call per value inside `Cast`).
let optimized: [SwiftSetting] = [.unsafeFlags(["-O"], .when(configuration: .debug)), .unsafeFlags(["-Xllvm", "-sil-disable-pass=cmo"])]

let package = Package(
    name: "Vessel",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "vessel", targets: ["vessel"]),
        .library(name: "VesselTensor", targets: ["VesselTensor"]),
        .executable(name: "vessel-runtime", targets: ["vessel-runtime"]),
        .library(name: "VesselManifest", targets: ["VesselManifest"]),
        .library(name: "VesselManifestYAML", targets: ["VesselManifestYAML"]),
        .library(name: "VesselStore", targets: ["VesselStore"]),
        .library(name: "VesselArtifact", targets: ["VesselArtifact"]),
        .library(name: "VesselONNX", targets: ["VesselONNX"]),
        .library(name: "VesselModel", targets: ["VesselModel"]),
        .library(name: "VesselProcessing", targets: ["VesselProcessing"]),
        .library(name: "VesselPython", targets: ["VesselPython"]),
        .library(name: "VesselImport", targets: ["VesselImport"]),
        .library(name: "VesselServer", targets: ["VesselServer"]),
        .library(name: "VesselServeCommand", targets: ["VesselServeCommand"]),
        .library(name: "VesselModelSources", targets: ["VesselModelSources"]),
        .library(name: "VesselImage", targets: ["VesselImage"]),
        .library(name: "VesselRegistry", targets: ["VesselRegistry"]),
        .library(name: "VesselTrust", targets: ["VesselTrust"]),
        .library(name: "VesselSignature", targets: ["VesselSignature"])
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
        .package(url: "https://github.com/apple/swift-asn1", from: "1.7.4"),
        .package(url: "https://github.com/apple/swift-protobuf", from: "1.39.0"),
        .package(url: "https://github.com/apple/swift-numerics", from: "1.1.1"),
        // No default traits: `FullFoundation` would link all of Foundation (and its 34 MB of ICU
        // data) into the runtime binary that images ship.
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1", traits: []),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-extras", from: "1.35.2"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0")
    ],
    targets: [
        .target(name: "VesselTensor", swiftSettings: swiftSettings),
        // The system helpers every other module may need (one realpath, one containment check);
        // depends on nothing, imports no Foundation.
        .target(name: "VesselSystem", swiftSettings: swiftSettings),
        // The runtime binary (`vessel-runtime`, what images ship) links only FoundationEssentials:
        // VesselTensor, VesselManifest, VesselStore, VesselONNX, VesselModel, VesselServer and
        // VesselServeCommand import nothing that needs full Foundation, and nothing that needs Yams.
        // The vessel.yaml schema, and an image's file index (`UnpackedFileIndex`: each unpacked file's
        // digest, checked with VesselStore's file helpers).
        .target(
            name: "VesselManifest", dependencies: ["VesselTensor", "VesselStore", .product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: swiftSettings),
        // JPEG, PNG and WebP decoding for the `image` step: Debian's libturbojpeg0-dev, libpng-dev and libwebp-dev
        // (scripts/install-deps.sh installs them; images carry the shared libraries).
        .systemLibrary(name: "CTurboJPEG", pkgConfig: "libturbojpeg", providers: [.apt(["libturbojpeg0-dev"])]),
        .systemLibrary(name: "CPNG", pkgConfig: "libpng", providers: [.apt(["libpng-dev"])]),
        .systemLibrary(name: "CWebP", pkgConfig: "libwebp", providers: [.apt(["libwebp-dev"])]),
        // The declared pre/post-processing steps, compiled against a signature and run.
        .target(
            name: "VesselProcessing",
            dependencies: [
                "VesselManifest", "VesselTensor", "VesselJSON", "CTurboJPEG", "CPNG", "CWebP", .product(name: "RealModule", package: "swift-numerics")
            ],
            swiftSettings: swiftSettings
        ),
        // Keys, Sigstore bundles, Model Signing statements; signatures attached to artifacts.
        // Checking a signature: keys, DSSE, Sigstore bundles, Model Signing statements.
        // FoundationEssentials only: the image runtime checks signatures too.
        .target(
            name: "VesselSignature",
            dependencies: ["VesselStore", "VesselTensor", .product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "VesselTrust",
            dependencies: [
                "VesselArtifact", "VesselImage", "VesselManifest", "VesselSignature", "VesselStore", "VesselTensor",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"), .product(name: "SwiftASN1", package: "swift-asn1")
            ],
            swiftSettings: swiftSettings
        ),
        // A strict JSON parser over bytes: requests, tokenizer.json.
        .target(name: "VesselJSON", swiftSettings: swiftSettings),
        .target(
            name: "VesselManifestYAML",
            dependencies: ["VesselManifest", "VesselProcessing", "VesselTensor", "VesselStore", "VesselSystem", .product(name: "Yams", package: "Yams")],
            swiftSettings: swiftSettings
        ),
        // One C header for the kernels: a prefetch hint, which Swift cannot spell.
        .target(name: "CVesselPrefetch"),
        // The runtime's float32 row kernels, one source compiled twice: for baseline x86-64, and
        // (a symlink to the same file) for Haswell's AVX2 + FMA; VesselONNX picks one at run time.
        // Both are optimized in debug builds too: unoptimized SIMD code is hundreds of times
        // slower, which turned a test's BERT run into a 30-second timeout.
        .target(
            name: "VesselKernels", dependencies: ["CVesselPrefetch", .product(name: "RealModule", package: "swift-numerics")],
            swiftSettings: swiftSettings + optimized),
        .target(
            name: "VesselKernelsHaswell", dependencies: ["CVesselPrefetch", .product(name: "RealModule", package: "swift-numerics")],
            swiftSettings: swiftSettings + optimized + haswell + [.define("VESSEL_HASWELL")]),
        // The kernels again for AVX-512 with VNNI (symlinks, but for DirectConvolution.swift, which
        // is its own); VesselONNX picks them when the CPU has them.
        .target(
            name: "VesselKernelsAVX512", dependencies: ["CVesselPrefetch", .product(name: "RealModule", package: "swift-numerics")],
            swiftSettings: swiftSettings + optimized + avx512 + [.define("VESSEL_HASWELL"), .define("VESSEL_AVX512")]),
        .target(
            name: "VesselONNX",
            dependencies: [
                "VesselTensor", "VesselSystem", "VesselKernels", "VesselKernelsHaswell", "VesselKernelsAVX512",
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "RealModule", package: "swift-numerics")
            ],
            exclude: ["Proto"],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "VesselStore",
            dependencies: ["VesselSystem", .product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "VesselArtifact",
            dependencies: ["VesselStore", "VesselManifest", "VesselManifestYAML", "VesselPython", "VesselSystem"],
            swiftSettings: swiftSettings
        ),
        // zlib for gzip image layers: Debian's zlib1g-dev (scripts/install-deps.sh installs it).
        .systemLibrary(name: "CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        .target(
            name: "VesselRegistry",
            dependencies: [
                "VesselStore",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Crypto", package: "swift-crypto")
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "VesselImage",
            dependencies: [
                "VesselArtifact", "VesselStore", "VesselManifest", "VesselPython", "VesselSystem", "CZlib",
                .product(name: "Crypto", package: "swift-crypto")
            ],
            swiftSettings: swiftSettings,
            // The runtime's Swift packages and versions, for the image's SBOM.
            plugins: ["SwiftPackageList"]
        ),
        .plugin(name: "SwiftPackageList", capability: .buildTool()),
        // The Python backend's worker processes and their framed protocol; FoundationEssentials only.
        .target(
            name: "VesselPython",
            dependencies: ["VesselTensor", "VesselManifest", "VesselStore", "VesselSystem", .product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "VesselModel",
            dependencies: [
                "VesselStore", "VesselManifest", "VesselProcessing", "VesselTensor", "VesselONNX", "VesselPython", "VesselSystem"
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "VesselServer",
            dependencies: [
                "VesselModel", "VesselManifest", "VesselProcessing", "VesselStore", "VesselSystem", "VesselTensor", "VesselONNX", "VesselJSON",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras")
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "VesselServeCommand",
            dependencies: [
                "VesselServer", "VesselManifest", "VesselSignature", "VesselSystem",
                .product(name: "ArgumentParser", package: "swift-argument-parser")
            ],
            swiftSettings: swiftSettings
        ),
        // `vessel import mlflow|cog`: other tools' model directories as Vessel model directories.
        .target(
            name: "VesselImport",
            dependencies: ["VesselManifest", "VesselManifestYAML", "VesselONNX", "VesselPython", "VesselTensor", .product(name: "Yams", package: "Yams")],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "VesselModelSources",
            dependencies: ["VesselServer", "VesselModel", "VesselArtifact", "VesselManifest", "VesselManifestYAML", "VesselStore", "VesselONNX"],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "vessel",
            dependencies: [
                "VesselArtifact", "VesselStore", "VesselManifest", "VesselManifestYAML", "VesselProcessing", "VesselPython", "VesselImport", "VesselTensor",
                "VesselONNX", "VesselModel",
                "VesselServer", "VesselServeCommand", "VesselModelSources", "VesselImage", "VesselRegistry", "VesselSystem", "VesselTrust",
                .product(name: "ArgumentParser", package: "swift-argument-parser")
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "vessel-runtime",
            dependencies: ["VesselServeCommand", "VesselServer", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            swiftSettings: swiftSettings,
            // What images ship: in release, the Swift runtime linked in (no libswiftCore,
            // libFoundationEssentials … beside it) and the symbol tables stripped — the runtime
            // layer drops from 58 to 26 MiB gzip. Debug builds keep both for the tests' backtraces.
            // (The static FoundationEssentials makes gold print glibc's link-time note on mktemp;
            // SwiftPM's --static-swift-stdlib prints the same.)
            linkerSettings: [
                .unsafeFlags(["-static-stdlib", "-l_FoundationCShims", "-l_FoundationCollections", "-Xlinker", "-s"], .when(configuration: .release))
            ]
        ),
        .target(name: "VesselTestSupport", dependencies: ["VesselStore"], path: "Tests/VesselTestSupport", swiftSettings: swiftSettings),
        .testTarget(name: "VesselTensorTests", dependencies: ["VesselTensor", "VesselTestSupport"], swiftSettings: swiftSettings),
        .testTarget(name: "VesselSystemTests", dependencies: ["VesselSystem", "VesselTestSupport"], swiftSettings: swiftSettings),
        .testTarget(name: "VesselJSONTests", dependencies: ["VesselJSON", "VesselTensor"], swiftSettings: swiftSettings),
        .testTarget(name: "VesselSignatureTests", dependencies: ["VesselSignature"], swiftSettings: swiftSettings),
        .testTarget(name: "VesselTrustTests", dependencies: ["VesselTrust", "VesselStore", "VesselTensor", "VesselTestSupport"], swiftSettings: swiftSettings),
        .testTarget(
            name: "VesselONNXTests",
            dependencies: [
                "VesselONNX", "VesselKernels", "VesselKernelsAVX512", "VesselTensor", "VesselTestSupport",
                .product(name: "SwiftProtobuf", package: "swift-protobuf")
            ],
            exclude: ["Conformance", "Fixtures"],
            swiftSettings: swiftSettings
        ),
        .testTarget(name: "VesselManifestTests", dependencies: ["VesselManifest"], swiftSettings: swiftSettings),
        // One test file (a symlink in the second) run against each copy of the kernels.
        .testTarget(name: "VesselKernelsTests", dependencies: ["VesselKernels"], swiftSettings: swiftSettings),
        .testTarget(name: "VesselKernelsHaswellTests", dependencies: ["VesselKernelsHaswell"], swiftSettings: swiftSettings + [.define("HASWELL")]),
        // The AVX-512 GEMMs against the Haswell copy's (bit for bit) and exact integer sums.
        .testTarget(
            name: "VesselKernelsAVX512Tests", dependencies: ["VesselKernelsAVX512", "VesselKernelsHaswell"],
            swiftSettings: swiftSettings + optimized),
        .testTarget(
            name: "VesselManifestYAMLTests",
            dependencies: ["VesselManifest", "VesselManifestYAML", "VesselTestSupport"],
            swiftSettings: swiftSettings
        ),
        .testTarget(name: "VesselPythonTests", dependencies: ["VesselPython", "VesselTensor", "VesselTestSupport"], swiftSettings: swiftSettings),
        .testTarget(
            name: "VesselImportTests",
            dependencies: ["VesselImport", "VesselManifest", "VesselManifestYAML", "VesselTensor", "VesselTestSupport"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "VesselProcessingTests",
            dependencies: ["VesselProcessing", "VesselManifest", "VesselTensor", "VesselTestSupport"],
            exclude: ["Reference"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "VesselServeCommandTests",
            dependencies: ["VesselServeCommand", "VesselServer", "VesselTestSupport", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "VesselModelSourcesTests",
            dependencies: ["VesselModelSources", "VesselArtifact", "VesselModel", "VesselONNX", "VesselStore", "VesselTensor", "VesselTestSupport"],
            swiftSettings: swiftSettings
        ),
        .testTarget(name: "VesselStoreTests", dependencies: ["VesselStore", "VesselTestSupport"], swiftSettings: swiftSettings),
        .testTarget(name: "VesselModelTests", dependencies: ["VesselModel", "VesselManifest", "VesselTensor"], swiftSettings: swiftSettings),
        .testTarget(
            name: "VesselArtifactTests",
            dependencies: ["VesselArtifact", "VesselStore", "VesselManifest", "VesselTestSupport"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "VesselServerTests",
            dependencies: [
                "VesselServer", "VesselModelSources", "VesselModel", "VesselSystem", "VesselTensor", "VesselONNX", "VesselTestSupport",
                .product(name: "HummingbirdTesting", package: "hummingbird")
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "VesselRegistryTests",
            dependencies: ["VesselRegistry", "VesselStore", "VesselTestSupport"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "VesselImageTests",
            dependencies: ["VesselImage", "VesselArtifact", "VesselManifest", "VesselModel", "VesselStore", "VesselTestSupport"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "VesselCLITests",
            dependencies: ["vessel", "VesselStore", "VesselServer", "VesselTestSupport", .product(name: "Yams", package: "Yams")],
            swiftSettings: swiftSettings
        )
    ]
)
