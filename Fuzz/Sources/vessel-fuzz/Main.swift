import CFuzzerDriver
import Foundation

/// `vessel-fuzz TARGET [libFuzzer flags and corpus directories]`: the target's name comes
/// first; the rest goes to libFuzzer as it is. SwiftPM links an executable's `main` to
/// `vessel_fuzz_main`, so this is where the program starts (the package compiles with
/// `-parse-as-library`, and libFuzzer's own `main` is never linked).
@_cdecl("vessel_fuzz_main")
func fuzzMain(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    let names = FuzzTarget.allCases.map(\.rawValue).joined(separator: ", ")
    guard argc >= 2, let argv, let first = argv[1], let target = FuzzTarget(rawValue: String(cString: first)) else {
        FileHandle.standardError.write(Data("usage: vessel-fuzz TARGET [libFuzzer flags] [corpus directories]\ntargets: \(names)\n".utf8))
        return 2
    }
    FuzzTarget.selected = target
    var arguments: [UnsafeMutablePointer<CChar>?] = [argv[0]] + (2..<Int(argc)).map { argv[$0] }
    // Seeds made at start (an artifact's own manifest) join the corpus directories, unless the
    // inputs are files: libFuzzer then runs just those, to reproduce a crash.
    let inputs = arguments.dropFirst().compactMap { $0.map { String(cString: $0) } }.filter { !$0.hasPrefix("-") }
    let seeds = target.prepare()
    if !inputs.contains(where: { path in
        var isDirectory: ObjCBool = false
        return FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) && !isDirectory.boolValue
    }) {
        for directory in seeds { arguments.append(strdup(directory)) }
    }
    arguments.append(nil)
    var count = Int32(arguments.count - 1)
    return arguments.withUnsafeMutableBufferPointer { buffer in
        var pointer: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = buffer.baseAddress
        return LLVMFuzzerRunDriver(&count, &pointer) { fuzzOne($0, $1) }
    }
}

/// libFuzzer's callback, under the name its archive's own `main` refers to (that object is
/// linked, though never run).
@_cdecl("LLVMFuzzerTestOneInput")
func fuzzOne(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    FuzzTarget.selected.run(size == 0 ? [] : Array(UnsafeBufferPointer(start: data, count: size)))
    return 0
}
