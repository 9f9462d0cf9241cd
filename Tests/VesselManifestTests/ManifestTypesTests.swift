import Testing
@testable import VesselManifest

@Suite("manifest types, diagnostics and suggestions")
struct ManifestTypesTests {
    @Test(
        "a typo gets the closest candidate, a different word none",
        arguments: [
            ("sigature", "signature"), ("SERVING", "serving"), ("postprocesss", "postprocess"), ("modle", "model"),
            ("weights", nil), ("x", nil), ("", nil)
        ] as [(String, String?)])
    func suggestions(word: String, expected: String?) {
        let keys = ["schemaVersion", "name", "version", "model", "files", "signature", "serving", "preprocess", "postprocess", "runtime"]
        #expect(Suggestion.closest(to: word, in: keys) == expected)
        #expect(Suggestion.didYouMean(word, in: keys) == expected.map { "did you mean `\($0)`?" })
    }

    @Test("edit distance counts Unicode scalars and every kind of edit")
    func editDistance() {
        #expect(Suggestion.editDistance("kitten", "sitting") == 3)
        #expect(Suggestion.editDistance("", "abc") == 3)
        #expect(Suggestion.editDistance("abc", "") == 3)
        #expect(Suggestion.editDistance("é", "e") == 1)
        #expect(Suggestion.editDistance("float32", "flaot32") == 1, "a swap of neighbours is one edit")
        #expect(Suggestion.editDistance("ca", "abc") == 3, "optimal string alignment: no edit of a swapped pair")
        #expect(Suggestion.editDistance("same", "same") == 0)
    }

    @Test("a diagnostic reads file:line:column, severity, message and hint; the error counts only errors")
    func diagnostics() {
        let at = SourceLocation(file: "m/vessel.yaml", line: 7, column: 3)
        let error = Diagnostic(.error, "unknown key `sigature`", at: at, hint: "did you mean `signature`?")
        let warning = Diagnostic(.warning, "no examples", at: SourceLocation(file: "m/vessel.yaml", line: 1, column: 1))
        #expect(error.description == "m/vessel.yaml:7:3: error: unknown key `sigature`\n    hint: did you mean `signature`?")
        let thrown = ManifestValidationError(diagnostics: [warning, error])
        #expect(thrown.errors == [error])
        #expect(
            thrown.description == """
                1 error in the manifest:
                m/vessel.yaml:1:1: warning: no examples
                m/vessel.yaml:7:3: error: unknown key `sigature`
                    hint: did you mean `signature`?
                """)
        #expect(ManifestValidationError(diagnostics: [error, error]).description.hasPrefix("2 errors in the manifest:"))
    }

    @Test("file roles name ModelPack's layer media types; formats pick their backend")
    func rolesAndFormats() {
        // The ModelPack spec's layer types: application/vnd.cncf.model.{weight,weight.config,doc,code,dataset}.v1.tar
        #expect(
            FileRole.allCases.map { "application/vnd.cncf.model.\($0.mediaTypeStem).v1.tar" } == [
                "application/vnd.cncf.model.weight.v1.tar", "application/vnd.cncf.model.weight.config.v1.tar",
                "application/vnd.cncf.model.code.v1.tar", "application/vnd.cncf.model.doc.v1.tar", "application/vnd.cncf.model.dataset.v1.tar"
            ])
        #expect(ModelFormat.allCases.filter { $0.defaultBackend == .onnx } == [.onnx])
        #expect(
            ModelFormat.allCases.filter(\.hasReadyMadePythonLoader).map(\.rawValue).sorted() == [
                "joblib", "keras", "mlflow", "pickle", "savedmodel", "skops", "torchscript"
            ])
    }
}
