import CZlib
import VesselStore

/// Streaming gzip through zlib, for image layers (`application/vnd.oci.image.layer.v1.tar+gzip`).
///
/// The gzip header zlib writes carries no file name and time 0, so the same input at the same
/// level gives the same bytes with the same zlib: image digests stay reproducible.
public final class GzipWriter {
    private var stream = z_stream()
    private let sink: (UnsafeRawBufferPointer) throws -> Void
    private var output = [UInt8](repeating: 0, count: 1 << 18)
    private var finished = false

    public struct ZlibError: Error, CustomStringConvertible {
        public var code: Int32
        public var operation: String
        public var description: String { "zlib \(operation) failed (\(code))" }
    }

    public init(level: Int32 = 6, sink: @escaping (UnsafeRawBufferPointer) throws -> Void) throws {
        self.sink = sink
        // 15 + 16: a 32 KiB window with a gzip header and trailer; memLevel 8 is zlib's default.
        let status = deflateInit2_(&stream, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size))
        guard status == Z_OK else { throw ZlibError(code: status, operation: "deflateInit2") }
    }

    deinit { deflateEnd(&stream) }

    public func write(_ buffer: UnsafeRawBufferPointer) throws {
        guard buffer.count > 0 else { return }
        stream.next_in = UnsafeMutablePointer(mutating: buffer.bindMemory(to: Bytef.self).baseAddress)
        stream.avail_in = uInt(buffer.count)
        try pump(flush: Z_NO_FLUSH)
    }

    public func finish() throws {
        guard !finished else { return }
        finished = true
        stream.next_in = nil
        stream.avail_in = 0
        try pump(flush: Z_FINISH)
    }

    private func pump(flush: Int32) throws {
        while true {
            let (status, produced) = output.withUnsafeMutableBufferPointer { out -> (Int32, Int) in
                stream.next_out = out.baseAddress
                stream.avail_out = uInt(out.count)
                let status = deflate(&stream, flush)
                return (status, out.count - Int(stream.avail_out))
            }
            guard status == Z_OK || status == Z_STREAM_END || status == Z_BUF_ERROR else { throw ZlibError(code: status, operation: "deflate") }
            if produced > 0 { try output.withUnsafeBytes { try sink(UnsafeRawBufferPointer(rebasing: $0[0..<produced])) } }
            if flush == Z_FINISH ? status == Z_STREAM_END : (stream.avail_in == 0 && produced < output.count) { return }
        }
    }
}

/// Streaming gunzip: feed compressed chunks, get decompressed chunks. Several gzip members in a
/// row are read as one stream, as gzip(1) does.
public final class GzipReader {
    private var stream = z_stream()
    private let sink: (UnsafeRawBufferPointer) throws -> Void
    private var output = [UInt8](repeating: 0, count: 1 << 18)
    private var ended = false
    private let context: String

    public struct FormatError: Error, CustomStringConvertible {
        public var context: String
        public var reason: String
        public var description: String { "\(context) is not valid gzip: \(reason)" }
    }

    public init(context: String, sink: @escaping (UnsafeRawBufferPointer) throws -> Void) throws {
        self.sink = sink
        self.context = context
        let status = inflateInit2_(&stream, 15 + 16, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size))
        guard status == Z_OK else { throw GzipWriter.ZlibError(code: status, operation: "inflateInit2") }
    }

    deinit { inflateEnd(&stream) }

    public func write(_ buffer: UnsafeRawBufferPointer) throws {
        guard let base = buffer.bindMemory(to: Bytef.self).baseAddress, buffer.count > 0 else { return }
        stream.next_in = UnsafeMutablePointer(mutating: base)
        stream.avail_in = uInt(buffer.count)
        var outputFull = false
        while stream.avail_in > 0 || outputFull {
            if ended {
                // Another member follows.
                inflateReset(&stream)
                ended = false
            }
            let (status, produced) = output.withUnsafeMutableBufferPointer { out -> (Int32, Int) in
                stream.next_out = out.baseAddress
                stream.avail_out = uInt(out.count)
                let status = inflate(&stream, Z_NO_FLUSH)
                return (status, out.count - Int(stream.avail_out))
            }
            outputFull = produced == output.count
            if produced > 0 { try output.withUnsafeBytes { try sink(UnsafeRawBufferPointer(rebasing: $0[0..<produced])) } }
            switch status {
            case Z_STREAM_END:
                ended = true
                outputFull = false
            case Z_OK: break
            case Z_BUF_ERROR where produced == 0: return
            default:
                let message = stream.msg.map { String(cString: $0) } ?? "error \(status)"
                throw FormatError(context: context, reason: message)
            }
        }
    }

    /// Throws if the stream stopped in the middle of a member.
    public func finish() throws {
        guard ended else { throw FormatError(context: context, reason: "it ends early") }
    }
}
