import ArgumentParser
import Foundation
import VesselArtifact
import VesselStore
import VesselTrust

struct Keygen: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Make a signing key pair: PATH (the private key, PKCS #8 PEM, mode 0600) and PATH.pub (the public key).",
        discussion: """
            ecdsa-p256 (the default) is what `model_signing sign key` and cosign take; ecdsa-p384 and ed25519 sign and verify in vessel. \
            With --encrypt the private key is an encrypted PKCS #8 PEM (PBKDF2-HMAC-SHA-256, AES-256-CBC, as OpenSSL reads) under the \
            password in VESSEL_KEY_PASSWORD, which `vessel sign` then reads from the same variable.
            """
    )

    @Argument(help: ArgumentHelp("Where to write the private key; the public key goes to PATH.pub. Neither may exist.", valueName: "path"))
    var path: String

    @Option(help: ArgumentHelp("Key type: \(KeyType.allCases.map(\.rawValue).joined(separator: ", ")).", valueName: "type"))
    var type = KeyType.ecdsaP256.rawValue

    @Flag(help: "Encrypt the private key under the password in VESSEL_KEY_PASSWORD.")
    var encrypt = false

    func run() throws {
        try vessel.run {
            guard let type = KeyType(rawValue: type) else {
                throw ValidationError("--type must be one of \(KeyType.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            let publicPath = path + ".pub"
            for existing in [path, publicPath] where FileManager.default.fileExists(atPath: existing) {
                throw ValidationError("\(existing) already exists; vessel keygen does not overwrite keys")
            }
            var password: String?
            if encrypt {
                guard let given = keyPassword() else { throw ValidationError("--encrypt takes the password from VESSEL_KEY_PASSWORD, which is not set") }
                password = given
            }
            let key = SigningKey.generate(type)
            let pem = try password.map { try key.encryptedPEM(password: $0) } ?? key.pem
            // Created 0600 and exclusively: the private key is never readable by others, not even briefly.
            try writeNew(path, Array(pem.utf8), mode: 0o600)
            try writeNew(publicPath, Array(key.publicKey.pem.utf8), mode: 0o644)
            print("wrote \(path) (private, \(type.rawValue)\(encrypt ? ", encrypted" : ""), mode 0600) and \(publicPath)")
        }
    }

    private func writeNew(_ path: String, _ bytes: [UInt8], mode: mode_t) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode)
        guard fd >= 0 else { throw ValidationError("cannot create \(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        fchmod(fd, mode)
        try bytes.withUnsafeBytes { try FileSystem.writeAll(fd, $0, path: path) }
        guard fsync(fd) == 0 else { throw ValidationError("cannot write \(path): \(String(cString: strerror(errno)))") }
    }
}

/// The password for encrypted private keys: VESSEL_KEY_PASSWORD, never an argument (arguments
/// show in `ps` and shell history).
func keyPassword() -> String? {
    ProcessInfo.processInfo.environment["VESSEL_KEY_PASSWORD"].flatMap { $0.isEmpty ? nil : $0 }
}

/// A private key from `--key FILE` or, with `--key env:NAME`, an environment variable; the key
/// is never printed. An encrypted one is opened with ``keyPassword()``.
func loadSigningKey(_ argument: String) throws -> SigningKey {
    if argument.hasPrefix("env:") {
        let name = String(argument.dropFirst(4))
        guard let text = ProcessInfo.processInfo.environment[name], !text.isEmpty else { throw ValidationError("the environment variable \(name) is not set") }
        return try SigningKey(pem: text, source: "$\(name)", password: keyPassword())
    }
    guard let data = FileManager.default.contents(atPath: argument) else { throw ValidationError("cannot read the key \(argument)") }
    return try SigningKey(pem: String(decoding: data, as: UTF8.self), source: argument, password: keyPassword())
}

func loadVerifyingKey(_ path: String) throws -> VerifyingKey {
    guard let data = FileManager.default.contents(atPath: path) else { throw ValidationError("cannot read the public key \(path)") }
    return try VerifyingKey(pem: String(decoding: data, as: UTF8.self), source: path)
}

struct Sign: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract:
            "Sign a model artifact or an image, and attach the signatures to it in the store: its manifest digest as cosign does, an artifact's files (OpenSSF Model Signing v1.0), and the provenance and SBOM attached to either.",
        discussion: """
            The manifest digest is signed twice, as cosign signs it: cosign 3's Sigstore bundle (an in-toto statement of \
            predicate type https://sigstore.dev/cosign/sign/v1, DSSE-signed, attached as an OCI 1.1 referrer with cosign's \
            annotations), and cosign's tag form (a simple-signing payload, which `vessel push` also puts under the tag \
            sha256-<hex>.sig), the one sigstore's policy-controller checks for a key (see `vessel deploy --kubernetes \
            --signed-by`). The files signature lists every file `vessel unpack` writes with its SHA-256, so `model_signing \
            verify key` accepts the unpacked directory; sign before `vessel image`, and the image carries it for its runtime's \
            own check. `vessel verify REF --key PUB` checks them all against the store.
            """
    )

    @Argument(help: "NAME[:TAG] or NAME@sha256:DIGEST of a model artifact or an image")
    var reference: String

    @Option(help: ArgumentHelp("The private key: a PEM file, or env:NAME for an environment variable.", valueName: "key"))
    var key: String

    @Option(
        help: ArgumentHelp(
            "What to sign: cosign (the manifest digest), oms (an artifact's files, Model Signing), or both (the default for an artifact; an image takes cosign).",
            valueName: "format"))
    var format: String?

    @Option(
        name: [.customShort("o"), .long],
        help: ArgumentHelp(
            "Also write the bundle to this file (the files signature for an artifact, for model_signing; else the manifest's).", valueName: "file"))
    var output: String?

    @OptionGroup var store: StoreOptions

    func run() throws {
        try vessel.run {
            let signingKey = try loadSigningKey(key)
            let (store, reference, descriptor) = try store.resolve(reference)
            let keyText = "\(signingKey.type.rawValue) key \(signingKey.publicKey.hint.prefix(12))…"
            let isArtifact = descriptor.artifactType == ModelPack.artifactType
            guard ["cosign", "oms", "both", nil].contains(format) else { throw ValidationError("--format takes cosign, oms or both, not \(format ?? "")") }
            if !isArtifact, format == "oms" || format == "both" {
                throw ValidationError(
                    "\(reference) is an image: Model Signing covers a model artifact's files; an image's manifest is signed with --format cosign")
            }
            var written = false
            if isArtifact, format != "cosign" {
                let artifact = try Artifact.load(reference, from: store, verifyLayers: false)  // the signing pass checks every layer
                let (bundle, referrer) = try ArtifactSigning.sign(artifact, store: store, key: signingKey)
                if let output {
                    try Data(try bundle.encoded()).write(to: URL(fileURLWithPath: output))
                    written = true
                }
                print("signed the files of \(reference) \(artifact.descriptor.digest) with \(keyText): signature \(referrer.digest)")
                let attestations = try ArtifactSigning.signAttestations(artifact, store: store, key: signingKey)
                if !attestations.isEmpty { print("signed its attached \(attestations.map(\.rawValue).joined(separator: " and "))") }
            }
            if format != "oms" {
                // The blobs are checked before their manifest's digest is vouched for (by the
                // files signature's pass just above, for an artifact signed both ways).
                if !isArtifact || format == "cosign" { _ = try store.verify(descriptor) }
                let (bundle, referrer) = try ManifestSigning.sign(descriptor, reference: reference.description, store: store, key: signingKey)
                if let output, !written { try Data(try bundle.encoded()).write(to: URL(fileURLWithPath: output)) }
                print("signed the manifest of \(reference) \(descriptor.digest) with \(keyText) (cosign): signature \(referrer.digest)")
                if !isArtifact {
                    let attestations = try ArtifactSigning.signAttestations(
                        of: descriptor, named: ArtifactSigning.imageSubjectName(descriptor), store: store, key: signingKey)
                    if !attestations.isEmpty { print("signed its attached \(attestations.map(\.rawValue).joined(separator: " and "))") }
                }
            }
        }
    }
}
