import Foundation
public import VesselStore

extension TestSupport {
    /// The bytes of a tar built from entries with Vessel's writer, which writes any path it is
    /// given — so tests can also build the hostile archives importers must refuse.
    public static func tarBytes(_ entries: [(String, TarWriter.EntryKind, [UInt8])]) throws -> [UInt8] {
        var bytes: [UInt8] = []
        var tar = TarWriter { bytes.append(contentsOf: $0) }
        for (name, kind, content) in entries {
            try tar.writeHeader(path: name, kind: kind)
            if case .file = kind {
                try content.withUnsafeBytes { try tar.writeContent($0) }
                try tar.finishEntry()
            }
        }
        try tar.finish()
        return bytes
    }
}
