#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import VesselTensor

/// The frames a worker and the server exchange (see ``WorkerScript``): a JSON header and a
/// payload of raw tensor bytes.
struct WorkerFrame {
    var header: [UInt8]
    var payload: [UInt8]

    struct TensorHeader: Codable {
        var name: String
        var dtype: String
        var shape: [Int]
        var nbytes: Int
    }

    struct Request: Encodable {
        var tensors: [TensorHeader]
    }

    struct Answer: Decodable {
        var ok: Bool
        /// The model's code refused an input (a Cog `Input` constraint): the client's to fix.
        var inputError: Bool?
        var tensors: [TensorHeader]?
        var error: String?
        var traceback: String?
    }

    /// The bytes on the pipe: lengths, header, payload.
    var bytes: [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(12 + header.count + payload.count)
        withUnsafeBytes(of: UInt32(header.count).littleEndian) { out += $0 }
        withUnsafeBytes(of: UInt64(payload.count).littleEndian) { out += $0 }
        out += header
        out += payload
        return out
    }

    /// A request carrying `inputs`, in name order.
    static func request(_ inputs: [String: Tensor]) throws(WorkerError) -> WorkerFrame {
        var headers: [TensorHeader] = []
        var payload: [UInt8] = []
        for (name, tensor) in inputs.sorted(by: { $0.key < $1.key }) {
            let start = payload.count
            if tensor.dtype == .string {
                for element in tensor.strings {
                    // A data URI is binary (an encoded image): the model gets its bytes. Text stays text.
                    let binary = element.hasPrefix("data:")
                    let raw = binary ? BytesElement.bytes(element) : Array(element.utf8)
                    payload.append(binary ? 1 : 0)
                    withUnsafeBytes(of: UInt32(raw.count).littleEndian) { payload += $0 }
                    payload += raw
                }
            } else {
                let byteCount = tensor.count * (tensor.dtype.byteSize ?? 0)
                payload += UnsafeRawBufferPointer(start: tensor.storage.pointer, count: byteCount)
            }
            headers.append(TensorHeader(name: name, dtype: tensor.dtype.rawValue, shape: tensor.shape, nbytes: payload.count - start))
        }
        do {
            return WorkerFrame(header: Array(try JSONEncoder().encode(Request(tensors: headers))), payload: payload)
        } catch {
            throw .unavailable("cannot encode the request for the Python worker: \(error)")
        }
    }

    func answer() throws(WorkerError) -> Answer {
        do {
            let decoder = JSONDecoder()
            decoder.keyDecodingStrategy = .convertFromSnakeCase  // the worker script's spelling
            return try decoder.decode(Answer.self, from: Data(header))
        } catch {
            throw .protocolViolation("its answer's header is not the expected JSON")
        }
    }

    /// The tensors an answer's payload holds, checked against their headers and `declared`
    /// (name → dtype): a worker is the model's code, and its bytes are not trusted.
    func tensors(_ headers: [TensorHeader], declared: [String: DType]) throws(WorkerError) -> [String: Tensor] {
        var result: [String: Tensor] = [:]
        var offset = 0
        for header in headers {
            guard let dtype = DType(rawValue: header.dtype), declared[header.name] == dtype else {
                throw .protocolViolation("it answered output `\(header.name)` as \(header.dtype), which was not asked for")
            }
            guard header.nbytes >= 0, offset <= payload.count - header.nbytes,
                let count = Tensor.checkedCount(of: header.shape), Tensor.allocationProblem(dtype, header.shape) == nil
            else {
                throw .protocolViolation("output `\(header.name)`'s shape \(header.shape) or size does not fit its payload")
            }
            let bytes = payload[offset..<(offset + header.nbytes)]
            offset += header.nbytes
            if dtype == .string {
                var elements: [String] = []
                elements.reserveCapacity(count)
                var at = bytes.startIndex
                for _ in 0..<count {
                    guard at + 5 <= bytes.endIndex else { throw .protocolViolation("output `\(header.name)` ends early") }
                    let kind = bytes[at]
                    let length = Int(bytes[at + 1]) | Int(bytes[at + 2]) << 8 | Int(bytes[at + 3]) << 16 | Int(bytes[at + 4]) << 24
                    guard length <= bytes.endIndex - at - 5 else { throw .protocolViolation("output `\(header.name)` ends early") }
                    let raw = bytes[(at + 5)..<(at + 5 + length)]
                    elements.append(kind == 0 ? String(decoding: raw, as: UTF8.self) : BytesElement.string(raw))
                    at += 5 + length
                }
                guard at == bytes.endIndex else { throw .protocolViolation("output `\(header.name)` has bytes past its elements") }
                result[header.name] = Tensor(strings: elements, shape: header.shape)
            } else {
                guard let size = dtype.byteSize, count * size == header.nbytes else {
                    throw .protocolViolation("output `\(header.name)` has \(header.nbytes) bytes for shape \(header.shape)")
                }
                let tensor = Tensor(uninitialized: dtype, shape: header.shape)
                bytes.withUnsafeBytes { source in
                    if let base = source.baseAddress { tensor.storage.pointer.copyMemory(from: base, byteCount: source.count) }
                }
                result[header.name] = tensor
            }
        }
        guard offset == payload.count else { throw .protocolViolation("its answer has bytes past its tensors") }
        return result
    }
}

/// Why a worker's run failed.
public enum WorkerError: Error, Sendable, CustomStringConvertible {
    /// The model's code raised: the worker lives on.
    case raised(message: String, traceback: String)
    /// The predictor refused an input (its declared type or constraints); the worker lives on.
    case invalidInput(String)
    /// The worker died, broke the protocol or was stopped; it is replaced.
    case died(String)
    case protocolViolation(String)
    /// Stopped at the caller's deadline or on cancellation; the worker was killed and is replaced.
    case stopped(String)
    /// No worker could be started.
    case unavailable(String)

    public var description: String {
        switch self {
        case .raised(let message, _): "the model's Python code raised \(message)"
        case .invalidInput(let message): message
        case .died(let why): "the Python worker \(why); it is being replaced"
        case .protocolViolation(let why): "the Python worker broke the protocol: \(why); it is being replaced"
        case .stopped(let why): why
        case .unavailable(let why): why
        }
    }
}
