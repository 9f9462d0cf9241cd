#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
public import VesselManifest
public import VesselSignature
import VesselSystem

/// The image runtime's `--require-signature`: the Model Signing bundles `vessel image` copied
/// into the file index (the artifact's, signed before the image was built) — one must verify
/// with the key and list exactly the index's files. The files themselves are then checked
/// against the index (`--verify-files`), so what is served is what was signed.
public enum FileIndexSignature {
    /// `path` (PEM), or the environment's `VESSEL_REQUIRE_SIGNATURE`, if either is set.
    public static func key(path: String?) throws -> VerifyingKey? {
        guard let path = path ?? ProcessInfo.processInfo.environment["VESSEL_REQUIRE_SIGNATURE"], !path.isEmpty else { return nil }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw TrustError("cannot read the public key \(path) (--require-signature, VESSEL_REQUIRE_SIGNATURE)")
        }
        return try VerifyingKey(pem: String(decoding: data, as: UTF8.self), source: path)
    }

    /// With a key (`keyPath`, else `VESSEL_REQUIRE_SIGNATURE`): the check, logged; what was
    /// verified by served name, for the pages. Without one: nothing.
    public static func require(_ index: UnpackedFileIndex, keyPath: String?, servedAs alias: String?) throws -> [String: String] {
        guard let key = try key(path: keyPath) else { return [:] }
        let verified = try verify(index, key: key)
        StandardStreams.error("vessel: \(verified) verified with key \(key.hint.prefix(12))…")
        return [alias ?? index.manifest?.name ?? index.name: "\(verified) verified with key \(key.hint.prefix(12))… at start"]
    }

    /// Returns which signature verified; throws naming why none did.
    public static func verify(_ index: UnpackedFileIndex, key: VerifyingKey) throws -> String {
        guard let bundles = index.signatures, !bundles.isEmpty else {
            throw TrustError(
                "the image of \(index.name) \(index.version) carries no signature of its files: sign the artifact (vessel sign) before building the image (vessel image)"
            )
        }
        let actual = ModelSigningStatement(
            modelName: index.name,
            resources: index.files.compactMap { file in
                file.digest.flatMap { ModelSigningStatement.unhex(String($0.dropFirst("sha256:".count))) }.map { .init(name: file.path, sha256: $0) }
            })
        var failures: [String] = []
        for (number, text) in bundles.enumerated() {
            let source = "signature \(number + 1) of \(index.name) \(index.version)"
            do {
                let bundle = try SigstoreBundle.parse(Array(text.utf8), source: source)
                let signed = try ModelSigningStatement.parse(try bundle.verifiedStatement(with: key, source: source), source: source)
                if let difference = signed.mismatch(with: actual) { throw TrustError("\(source) does not match the files: \(difference)") }
                return source
            } catch {
                failures.append("\(error)")
            }
        }
        throw TrustError("no signature of \(index.name)'s files verifies with this key: " + failures.joined(separator: "; "))
    }
}
