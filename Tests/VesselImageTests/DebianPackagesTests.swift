import Foundation
import Testing
import VesselImage
import VesselTestSupport

@Suite("Debian packages of an image's files")
struct DebianPackagesTests {
    @Test("a file's package from dpkg's status and lists, across the merged /usr; packages not installed, and files no package lists, have none")
    func owners() throws {
        let root = try TestSupport.makeTemporaryDirectory("dpkg")
        defer { TestSupport.remove(root) }
        try TestSupport.write(
            """
            Package: zlib1g
            Status: install ok installed
            Architecture: amd64
            Version: 1:1.2.13.dfsg-1
            Description: compression library
             with a continuation line: Version: 9

            Package: gone
            Status: deinstall ok config-files
            Architecture: amd64
            Version: 1.0

            Package: tzdata
            Status: install ok installed
            Architecture: all
            Version: 2024a-0+deb12u1

            """, to: root + "/status")
        try FileManager.default.createDirectory(atPath: root + "/info", withIntermediateDirectories: true)
        try TestSupport.write("/.\n/lib/x86_64-linux-gnu/libz.so.1.2.13\n/lib/x86_64-linux-gnu/libz.so.1\n", to: root + "/info/zlib1g:amd64.list")
        try TestSupport.write("/usr/lib/gone.so\n", to: root + "/info/gone:amd64.list")
        try TestSupport.write("/usr/share/zoneinfo/UTC\n", to: root + "/info/tzdata.list")
        let packages = DebianPackages(root: root)
        let zlib = try #require(packages.owner(of: "/usr/lib/x86_64-linux-gnu/libz.so.1.2.13"), "the merged /usr path finds /lib's entry")
        #expect(zlib.name == "zlib1g" && zlib.version == "1:1.2.13.dfsg-1" && zlib.architecture == "amd64")
        #expect(zlib.purl == "pkg:deb/debian/zlib1g@1:1.2.13.dfsg-1?arch=amd64")
        #expect(packages.owner(of: "/lib/x86_64-linux-gnu/libz.so.1")?.name == "zlib1g")
        #expect(packages.owner(of: "/usr/share/zoneinfo/UTC")?.architecture == "all")
        #expect(packages.owner(of: "/usr/lib/gone.so") == nil, "not installed")
        #expect(packages.owner(of: "/opt/swift/lib/libswiftCore.so") == nil)
        #expect(DebianPackages(root: root + "/none").owner(of: "/lib/x86_64-linux-gnu/libz.so.1") == nil, "no database, no packages")
    }

    @Test("this machine's dpkg database names the package of its zlib, at the version dpkg-query reports")
    func thisMachine() throws {
        let version = try TestSupport.run("dpkg-query", ["-W", "-f=${Version}", "zlib1g"]).standardOutput
        let path = try #require(["/usr/lib/x86_64-linux-gnu/libz.so.1", "/lib/x86_64-linux-gnu/libz.so.1"].first { FileManager.default.fileExists(atPath: $0) })
        let real = try FileManager.default.destinationOfSymbolicLink(atPath: path)
        let owner = DebianPackages().owner(of: (path as NSString).deletingLastPathComponent + "/" + real)
        #expect(owner?.name == "zlib1g" && owner?.version == version, "\(String(describing: owner)) vs \(version)")
    }
}
