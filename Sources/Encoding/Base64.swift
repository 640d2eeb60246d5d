/// Base64 (RFC 4648 section 4) and base64url (section 5), strict: each byte string has exactly one
/// spelling, so a signature or a hash cannot be varied without changing what it encodes.
public enum Base64 {
    static let standardAlphabet: [UInt8] = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
    static let urlAlphabet: [UInt8] = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)
    /// Each byte's 6-bit value, or `invalid`: one load per symbol instead of a search of the alphabet.
    static let standardValues = values(of: standardAlphabet)
    static let urlValues = values(of: urlAlphabet)
    static let invalid: UInt8 = 0xFF

    static func values(of alphabet: [UInt8]) -> [UInt8] {
        var values = [UInt8](repeating: invalid, count: 256)
        for (value, symbol) in alphabet.enumerated() { values[Int(symbol)] = UInt8(value) }
        return values
    }

    /// Standard alphabet, padded.
    public static func encode(_ bytes: some Collection<UInt8>) -> String {
        encode(bytes, alphabet: standardAlphabet, padded: true)
    }

    /// Standard alphabet with `padded`: exactly the padding the length needs. Without: no `=` at all.
    /// Either way the unused trailing bits must be zero.
    public static func decode(_ text: some StringProtocol, padded: Bool = true) -> [UInt8]? {
        var symbols = Array(text.utf8)
        if padded {
            guard symbols.count % 4 == 0 else { return nil }
            let padding = symbols.reversed().prefix { $0 == UInt8(ascii: "=") }.count
            guard padding <= 2 else { return nil }
            symbols.removeLast(padding)
        }
        return decode(symbols, values: standardValues)
    }

    static func encode(_ bytes: some Collection<UInt8>, alphabet: [UInt8], padded: Bool) -> String {
        var out: [UInt8] = []
        out.reserveCapacity((bytes.count + 2) / 3 * 4)
        var buffer: UInt32 = 0
        var bits = 0
        for byte in bytes {
            buffer = buffer << 8 | UInt32(byte)
            bits += 8
            while bits >= 6 {
                bits -= 6
                out.append(alphabet[Int(buffer >> UInt32(bits) & 0x3F)])
            }
        }
        if bits > 0 { out.append(alphabet[Int(buffer << UInt32(6 - bits) & 0x3F)]) }
        if padded { while out.count % 4 != 0 { out.append(UInt8(ascii: "=")) } }
        return String(decoding: out, as: UTF8.self)
    }

    static func decode(_ symbols: some Collection<UInt8>, values: [UInt8]) -> [UInt8]? {
        var out: [UInt8] = []
        out.reserveCapacity(symbols.count * 3 / 4)
        var buffer: UInt32 = 0
        var bits = 0
        for symbol in symbols {
            let value = values[Int(symbol)]
            guard value != invalid else { return nil }
            buffer = buffer << 6 | UInt32(value)
            bits += 6
            if bits >= 8 {
                bits -= 8
                out.append(UInt8(truncatingIfNeeded: buffer >> UInt32(bits)))
                buffer &= (1 << UInt32(bits)) - 1
            }
        }
        // 6 leftover bits cannot end a byte string; 2 or 4 must be zero padding bits.
        guard bits < 6, buffer == 0 else { return nil }
        return out
    }
}

/// Base64url without padding, as JWS compact serialisation and API keys use it.
public enum Base64URL {
    public static func encode(_ bytes: some Collection<UInt8>) -> String {
        Base64.encode(bytes, alphabet: Base64.urlAlphabet, padded: false)
    }

    public static func decode(_ text: some Collection<UInt8>) -> [UInt8]? {
        Base64.decode(text, values: Base64.urlValues)
    }
}
