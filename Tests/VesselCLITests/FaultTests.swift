import Foundation
import Testing
import VesselStore
import VesselTestSupport

/// Faults a store must survive: a full disk, processes killed at any moment of `import` and
/// `gc`, and several writers at once. After each, nothing partial is visible and everything
/// listed verifies (`CLITests.checkInvariants`).
@Suite("faults")
struct FaultTests {
    /// A copy of the bundled example with `megabytes` of random weights added.
    static func bigModel(in directory: String, megabytes: Int, name: String = "big") async throws -> String {
        let model = directory + "/" + name
        try TestSupport.copyExample(to: model)
        let head = try await TestSupport.run("sh", ["-c", "head -c \(megabytes << 20) /dev/urandom > '\(model)/weights.bin'"])
        #expect(head.status == 0)
        var yaml = try String(contentsOfFile: model + "/vessel.yaml", encoding: .utf8)
        yaml = yaml.replacingOccurrences(of: "  - path: README.md\n", with: "  - path: weights.bin\n    role: weights\n  - path: README.md\n")
        yaml = yaml.replacingOccurrences(of: "name: iris\n", with: "name: \(name)\n")
        try TestSupport.write(yaml, to: model + "/vessel.yaml")
        return model
    }

    /// Runs `vessel ARGUMENTS` and SIGKILLs it after `delay` seconds (if it is still running).
    static func killed(_ arguments: [String], home: String, after delay: Double) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: TestSupport.vesselBinary)
        process.arguments = arguments
        process.environment = ["VESSEL_HOME": home]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        Thread.sleep(forTimeInterval: delay)
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }

    @Test("a disk that fills up mid-pack: a clear error naming it, nothing partial kept, and the store still verifies and takes the next pack")
    func diskFull() async throws {
        let directory = try TestSupport.makeTemporaryDirectory("disk-full")
        defer { TestSupport.remove(directory) }
        let model = try await Self.bigModel(in: directory, megabytes: 48)
        let home = directory + "/home"
        try FileManager.default.createDirectory(atPath: home, withIntermediateDirectories: true)
        // A 32 MiB filesystem of its own for the store, in a private mount namespace (root here;
        // `unshare -r` maps the caller to root where user namespaces are allowed).
        let vessel = TestSupport.vesselBinary
        let script = """
            set -u
            mount -t tmpfs -o size=32m tmpfs '\(home)' || exit 90
            export VESSEL_HOME='\(home)'
            '\(vessel)' pack '\(TestSupport.exampleDirectory)' --no-test > /dev/null || exit 91
            '\(vessel)' pack '\(model)' --no-test -t big:1 2> '\(directory)/pack.err'
            echo "pack exit $?"
            echo "tmp: $(ls -A '\(home)/tmp' | wc -l)"
            '\(vessel)' list
            '\(vessel)' verify iris:1.0.0 > /dev/null && echo "iris verifies"
            '\(vessel)' gc > /dev/null && echo "gc ok"
            rm '\(model)/weights.bin' && head -c 1048576 /dev/urandom > '\(model)/weights.bin'
            '\(vessel)' pack '\(model)' --no-test -t big:1 > /dev/null && '\(vessel)' verify big:1 > /dev/null && echo "smaller pack verifies"
            """
        let run = try await TestSupport.run("unshare", ["-rm", "sh", "-c", script])
        if run.status == 90 || run.standardError.contains("unshare failed") {
            Issue.record("cannot mount a small filesystem here (unshare -rm + mount tmpfs): \(run.standardError)")
            return
        }
        let error = (try? String(contentsOfFile: directory + "/pack.err", encoding: .utf8)) ?? ""
        #expect(run.standardOutput.contains("pack exit 1"), "\(run.standardOutput) \(run.standardError)")
        #expect(error.contains("No space left on device"), "the error names the cause: \(error)")
        #expect(run.standardOutput.contains("tmp: 0"), "the partial blob is gone: \(run.standardOutput)")
        #expect(!run.standardOutput.contains("big:1") || run.standardOutput.contains("smaller pack verifies"), "\(run.standardOutput)")
        #expect(run.standardOutput.contains("iris verifies") && run.standardOutput.contains("gc ok"), "\(run.standardOutput) \(run.standardError)")
        #expect(run.standardOutput.contains("smaller pack verifies"), "\(run.standardOutput) \(run.standardError)")
    }

    @Test("kill -9 at any moment of an import or a gc leaves nothing partial, and everything listed verifies")
    func killedImportAndGC() async throws {
        let directory = try TestSupport.makeTemporaryDirectory("kill-import")
        defer { TestSupport.remove(directory) }
        let source = directory + "/source"
        let model = try await Self.bigModel(in: directory, megabytes: 96)
        #expect(try await TestSupport.vessel(["pack", model, "--no-test", "-t", "big:1"], home: source).status == 0)
        #expect(try await TestSupport.vessel(["export", "big:1", "-o", directory + "/big.tar"], home: source).status == 0)

        let home = directory + "/home"
        #expect(try await TestSupport.vessel(["pack", TestSupport.exampleDirectory, "--no-test"], home: home).status == 0)
        var generator = SplitMix(seed: 20261205)
        var kills = 0
        for _ in 0..<20 {
            let delay = Double(generator.next() % 400) / 1000
            try Self.killed(["import", directory + "/big.tar"], home: home, after: delay)
            try CLITests.checkInvariants(home: home, after: delay)
            kills += 1
        }
        #expect(try await TestSupport.vessel(["import", directory + "/big.tar"], home: home).status == 0)
        #expect(try await TestSupport.vessel(["verify", "big:1"], home: home).status == 0)
        // gc with work to do: the big artifact's blobs, untagged.
        for _ in 0..<20 {
            #expect(try await TestSupport.vessel(["tag", "big:1", "big:kept"], home: home).status == 0 || kills > 0)
            _ = try await TestSupport.vessel(["rm", "big:kept"], home: home)
            _ = try await TestSupport.vessel(["rm", "big:1"], home: home)
            let delay = Double(generator.next() % 60) / 1000
            try Self.killed(["gc"], home: home, after: delay)
            try CLITests.checkInvariants(home: home, after: delay)
            kills += 1
            _ = try await TestSupport.vessel(["import", directory + "/big.tar"], home: home)
        }
        #expect(kills == 40)
        #expect(try await TestSupport.vessel(["verify", "iris:1.0.0"], home: home).status == 0)
        #expect(try await TestSupport.vessel(["verify", "big:1"], home: home).status == 0)
        let gc = try await TestSupport.vessel(["gc"], home: home)
        #expect(gc.status == 0, "\(gc.standardError)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: home + "/tmp").isEmpty, "temporaries of killed writers are reclaimed")
    }

    @Test("three packs and a gc into one store at once all finish, and every artifact verifies")
    func concurrentWriters() async throws {
        let directory = try TestSupport.makeTemporaryDirectory("concurrent")
        defer { TestSupport.remove(directory) }
        let home = directory + "/home"
        var models: [String] = []
        for number in 1...3 { models.append(try await Self.bigModel(in: directory, megabytes: 24, name: "model\(number)")) }
        #expect(try await TestSupport.vessel(["pack", TestSupport.exampleDirectory, "--no-test", "-t", "old:1"], home: home).status == 0)
        #expect(try await TestSupport.vessel(["rm", "old:1"], home: home).status == 0)
        var processes: [(Process, Pipe)] = []
        for arguments in models.map({ ["pack", $0, "--no-test"] }) + [["gc"]] {
            let process = Process(), errors = Pipe()
            process.executableURL = URL(fileURLWithPath: TestSupport.vesselBinary)
            process.arguments = arguments
            process.environment = ["VESSEL_HOME": home]
            process.standardOutput = FileHandle.nullDevice
            process.standardError = errors
            try process.run()
            processes.append((process, errors))
        }
        for (process, errors) in processes {
            let text = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            process.waitUntilExit()
            #expect(process.terminationStatus == 0, "\(process.arguments ?? []): \(text)")
        }
        for index in 1...3 {
            #expect(try await TestSupport.vessel(["verify", "model\(index):1.0.0"], home: home).status == 0)
        }
        try CLITests.checkInvariants(home: home, after: 0)
    }
}

/// A fixed-seed generator, so a failing delay can be replayed.
struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
