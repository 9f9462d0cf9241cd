import ArgumentParser
import Foundation
import VesselImage
import VesselModel
import VesselServer
import VesselServeCommand
import VesselModelSources
import VesselStore

/// `REF_OR_DIR` or `ALIAS=REF_OR_DIR` → a model source: an existing directory with a
/// vessel.yaml is served from there, anything else is a reference in the store.
func modelSource(_ argument: String, store: StoreOptions) throws -> ModelSource {
    let (alias, target) = try ServeOptions.splitAlias(argument)
    if FileSystem.isDirectory(target) {
        return try .directory(target, alias: alias)
    }
    return try .reference(try parseReference(target), store: try store.open(), alias: alias)
}

/// The examples table: example, output, max abs/rel error, pass/fail.
func printReport(_ report: ExampleRun.Report) {
    print("\(report.model) \(report.version)")
    if !report.rows.isEmpty {
        let header = ["example", "output", "max abs err", "max rel err", "result"]
        let rows = report.rows.map { row -> [String] in
            let c = row.comparison
            return [
                row.example, row.output, String(format: "%.3g", c.maxAbsolute), String(format: "%.3g", c.maxRelative),
                c.passed ? "pass" : "FAIL: \(c.problem ?? "")"
            ]
        }
        let widths = header.indices.map { column in ([header] + rows).map { $0[column].count }.max() ?? 0 }
        for line in [header] + rows {
            print(zip(line, widths).map { $0.padding(toLength: $1, withPad: " ", startingAt: 0) }.joined(separator: "  "))
        }
    }
    if let failure = report.failure { printError("error: \(failure)") }
    let failed = report.rows.filter { !$0.comparison.passed }.count
    if report.passed {
        print("\(report.rows.count) output(s) of the examples passed")
    } else if report.failure != nil {
        print("the examples failed before all their outputs were compared (\(failed) of \(report.rows.count) compared failed)")
    } else {
        print("\(failed) of \(report.rows.count) output(s) failed")
    }
}
