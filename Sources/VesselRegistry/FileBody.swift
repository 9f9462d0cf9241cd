import AsyncHTTPClient
import NIOCore
import VesselStore
#if canImport(Glibc)
import Glibc
#endif

/// A byte range of a file as a stream of 1 MiB buffers: an upload body with flat memory.
struct FileBody: AsyncSequence, Sendable {
    typealias Element = ByteBuffer
    let path: String
    let offset: Int64
    let length: Int64
    let progress: ProgressBar

    final class Reader: @unchecked Sendable {
        let fd: Int32
        let path: String
        var position: Int64
        var remaining: Int64
        let progress: ProgressBar

        init(path: String, offset: Int64, length: Int64, progress: ProgressBar) throws {
            fd = try FileSystem.openForReading(path)
            self.path = path
            position = offset
            remaining = length
            self.progress = progress
        }

        deinit { close(fd) }

        func next() throws -> ByteBuffer? {
            guard remaining > 0 else { return nil }
            let want = Int(Swift.min(remaining, 1 << 20))
            var buffer = ByteBufferAllocator().buffer(capacity: want)
            let count = try buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: want) { raw -> Int in
                var done = 0
                while done < want {
                    let n = pread(fd, raw.baseAddress! + done, want - done, off_t(position + Int64(done)))
                    if n < 0, errno == EINTR { continue }
                    guard n > 0 else {
                        throw StoreError.io(operation: n == 0 ? "file ended early while reading" : "cannot read", path: path, errno: n == 0 ? 0 : errno)
                    }
                    done += n
                }
                return done
            }
            position += Int64(count)
            remaining -= Int64(count)
            progress.advance(by: count)
            return buffer
        }
    }

    struct AsyncIterator: AsyncIteratorProtocol {
        let reader: Reader?
        let failure: (any Error)?
        mutating func next() async throws -> ByteBuffer? {
            if let failure { throw failure }
            return try reader?.next()
        }
    }

    func makeAsyncIterator() -> AsyncIterator {
        do {
            return AsyncIterator(reader: try Reader(path: path, offset: offset, length: length, progress: progress), failure: nil)
        } catch {
            return AsyncIterator(reader: nil, failure: error)
        }
    }

    var requestBody: HTTPClientRequest.Body { .stream(self, length: .known(length)) }
}
