import Testing
import VesselStore

@Suite("references and digests")
struct ReferenceTests {
    @Test(
        "valid references parse",
        arguments: [
            ("iris", "iris", "latest"),
            ("iris:1.0.0", "iris", "1.0.0"),
            ("team/iris-classifier:v2_rc.1", "team/iris-classifier", "v2_rc.1"),
            ("a__b/c.d:x", "a__b/c.d", "x"),
            ("a---b:T", "a---b", "T")
        ])
    func valid(_ text: String, _ name: String, _ tag: String) throws {
        let reference = try Reference(parsing: text)
        #expect(reference.name == name)
        #expect(reference.tag == tag)
        #expect(reference.refName == "\(name):\(tag)")
    }

    @Test("digest references parse")
    func digest() throws {
        let hex = String(repeating: "ab", count: 32)
        let reference = try Reference(parsing: "iris@sha256:\(hex)")
        #expect(reference.digest?.hex == hex)
        #expect(reference.tag == nil)
        #expect(reference.description == "iris@sha256:\(hex)")
    }

    @Test(
        "invalid references are refused with a reason",
        arguments: [
            ("", "empty reference"),
            ("Iris:1", "names are lowercase"),
            ("iris:", "invalid tag"),
            ("iris:.hidden", "invalid tag"),
            ("-iris", "start and end with a letter or digit"),
            ("ir..is", "not a valid separator"),
            ("team//iris", "empty path component"),
            ("iris@sha256:abc", "invalid digest"),
            ("iris@md5:\(String(repeating: "a", count: 64))", "invalid digest"),
            ("ir is", "only lowercase letters")
        ])
    func invalid(_ text: String, _ reason: String) {
        #expect {
            try Reference(parsing: text)
        } throws: { error in
            "\(error)".contains(reason)
        }
    }

    @Test("digests accept exactly 64 lowercase hex digits")
    func digests() {
        #expect(Digest(hex: String(repeating: "0", count: 64)) != nil)
        #expect(Digest(hex: String(repeating: "A", count: 64)) == nil)
        #expect(Digest(hex: String(repeating: "0", count: 63)) == nil)
        #expect(Digest(parsing: "sha512:" + String(repeating: "0", count: 64)) == nil)
    }

    @Test(
        "symlink targets are judged lexically against the base",
        arguments: [
            ("a/link", "b", true), ("a/link", "../b", true), ("a/link", "../../b", false),
            ("link", "/etc/passwd", false), ("a/b/link", "../../c/./d", true), ("link", "", false)
        ])
    func symlinks(_ link: String, _ target: String, _ inside: Bool) {
        #expect(SafePath.symlinkStaysInside(linkPath: link, target: target) == inside)
    }

    @Test(
        "archive paths are normalized or refused",
        arguments: [
            ("a/./b//c", "a/b/c"), ("./x", "x"), ("/abs", nil), ("a/../../x", nil), ("..", nil), ("", nil), (".", nil)
        ] as [(String, String?)])
    func paths(_ path: String, _ expected: String?) {
        switch SafePath.normalize(path) {
        case .success(let value): #expect(value == expected)
        case .failure: #expect(expected == nil)
        }
    }
}
