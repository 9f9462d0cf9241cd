/// How a BYTES element that is not text — an encoded image, any binary payload — travels in a
/// string tensor: as a `data:` URI with base64 (RFC 2397), the form Cog and browsers already
/// use. Text stays text. Every entry that turns wire bytes into tensor elements (the OIP codec's
/// binary BYTES and `content_type: base64`, `vessel predict -i name=@file`) goes through
/// ``string(_:)``, and every consumer of bytes (the `image` step) through ``bytes(_:)``.
public enum BytesElement {
    /// The element for raw bytes: their text when they are valid UTF-8, else a data URI.
    public static func string(_ bytes: some Collection<UInt8>) -> String {
        if let text = String(validating: bytes, as: UTF8.self) { return text }
        return dataURI(bytes)
    }

    /// `data:application/octet-stream;base64,…` for any bytes.
    public static func dataURI(_ bytes: some Collection<UInt8>, mediaType: String = "application/octet-stream") -> String {
        "data:\(mediaType);base64," + Base64.encode(bytes)
    }

    /// The bytes an element carries: a data URI's payload (base64 or percent-encoded), bare
    /// base64 (MLServer's `content_type: base64` elements), or else the text's UTF-8.
    public static func bytes(_ element: String) -> [UInt8] {
        let utf8 = Array(element.utf8)
        if utf8.starts(with: Array("data:".utf8)), let comma = utf8.firstIndex(of: UInt8(ascii: ",")) {
            let header = utf8[5..<comma]
            let payload = utf8[(comma + 1)...]
            if header.count >= 7, Array(header.suffix(7)) == Array(";base64".utf8), let decoded = Base64.decode(payload) { return decoded }
            return percentDecoded(payload)
        }
        if utf8.count >= 8, let decoded = Base64.decode(utf8[...]) { return decoded }
        return utf8
    }

    static func percentDecoded(_ text: ArraySlice<UInt8>) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(text.count)
        var k = text.startIndex
        while k < text.endIndex {
            if text[k] == UInt8(ascii: "%"), k + 2 < text.endIndex, let high = hex(text[k + 1]), let low = hex(text[k + 2]) {
                out.append(high << 4 | low)
                k += 3
            } else {
                out.append(text[k])
                k += 1
            }
        }
        return out
    }

    private static func hex(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): c - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): c - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}

/// Standard base64 (RFC 4648 §4), with padding; decoding also takes the URL-safe alphabet,
/// missing padding and ASCII whitespace, and refuses anything else.
public enum Base64 {
    static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)

    public static func encode(_ bytes: some Collection<UInt8>) -> String {
        let input = Array(bytes)
        var out: [UInt8] = []
        out.reserveCapacity((input.count + 2) / 3 * 4)
        var k = 0
        while k + 2 < input.count {
            let n = UInt32(input[k]) << 16 | UInt32(input[k + 1]) << 8 | UInt32(input[k + 2])
            out += [alphabet[Int(n >> 18)], alphabet[Int(n >> 12 & 63)], alphabet[Int(n >> 6 & 63)], alphabet[Int(n & 63)]]
            k += 3
        }
        let rest = input.count - k
        if rest == 1 {
            let n = UInt32(input[k]) << 16
            out += [alphabet[Int(n >> 18)], alphabet[Int(n >> 12 & 63)], UInt8(ascii: "="), UInt8(ascii: "=")]
        } else if rest == 2 {
            let n = UInt32(input[k]) << 16 | UInt32(input[k + 1]) << 8
            out += [alphabet[Int(n >> 18)], alphabet[Int(n >> 12 & 63)], alphabet[Int(n >> 6 & 63)], UInt8(ascii: "=")]
        }
        return String(decoding: out, as: UTF8.self)
    }

    public static func decode(_ text: ArraySlice<UInt8>) -> [UInt8]? {
        var out: [UInt8] = []
        out.reserveCapacity(text.count / 4 * 3)
        var accumulator: UInt32 = 0, bits = 0, padding = 0
        for c in text {
            let value: UInt32
            switch c {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"): value = UInt32(c - UInt8(ascii: "A"))
            case UInt8(ascii: "a")...UInt8(ascii: "z"): value = UInt32(c - UInt8(ascii: "a")) + 26
            case UInt8(ascii: "0")...UInt8(ascii: "9"): value = UInt32(c - UInt8(ascii: "0")) + 52
            case UInt8(ascii: "+"), UInt8(ascii: "-"): value = 62
            case UInt8(ascii: "/"), UInt8(ascii: "_"): value = 63
            case UInt8(ascii: "="):
                padding += 1
                continue
            case UInt8(ascii: " "), UInt8(ascii: "\n"), UInt8(ascii: "\r"), UInt8(ascii: "\t"): continue
            default: return nil
            }
            guard padding == 0 else { return nil }
            accumulator = accumulator << 6 | value
            bits += 6
            if bits >= 8 {
                bits -= 8
                out.append(UInt8(truncatingIfNeeded: accumulator >> UInt32(bits)))
            }
        }
        // Leftover bits must be zero padding of the last group (at most 4 bits).
        guard bits < 6, padding <= 2 else { return nil }
        return out
    }
}
