/// Lowercase hexadecimal: the one spelling the audit log, key files and fingerprints use.
public enum Hex {
    /// The digit for a value below 16, by arithmetic: a table in a global array cost a lazy-global
    /// check and a bounds check per nibble.
    @inlinable
    static func digit(_ nibble: UInt8) -> UInt8 { nibble < 10 ? nibble &+ UInt8(ascii: "0") : nibble &+ (UInt8(ascii: "a") &- 10) }

    public static func encode(_ bytes: some Sequence<UInt8>) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(bytes.underestimatedCount * 2)
        append(bytes, to: &out)
        return String(decoding: out, as: UTF8.self)
    }

    @inlinable
    public static func append(_ bytes: some Sequence<UInt8>, to out: inout [UInt8]) {
        // Contiguous bytes (every digest) are written in place: two `append`s per byte were 2.7k
        // instructions per audit entry (callgrind, `Benchmarks/callgrind-simple`).
        let writtenInPlace: Void? = bytes.withContiguousStorageIfAvailable { source in
            let start = out.count
            out.append(contentsOf: repeatElement(0, count: source.count * 2))
            out.withUnsafeMutableBufferPointer { target in
                // The two digits of each byte go to the room just made for them.
                guard var cursor = target.baseAddress.map({ $0 + start }) else { return }
                for byte in source {
                    cursor[0] = digit(byte >> 4)
                    cursor[1] = digit(byte & 0xF)
                    cursor += 2
                }
            }
        }
        guard writtenInPlace == nil else { return }
        for byte in bytes {
            out.append(digit(byte >> 4))
            out.append(digit(byte & 0xF))
        }
    }

    /// Lowercase only: accepting uppercase as well would give one value two spellings.
    public static func decode(_ text: some StringProtocol) -> [UInt8]? {
        let utf8 = Array(text.utf8)
        guard utf8.count % 2 == 0 else { return nil }
        var out: [UInt8] = []
        out.reserveCapacity(utf8.count / 2)
        var index = 0
        while index < utf8.count {
            guard let high = nibble(utf8[index], acceptingUppercase: false),
                  let low = nibble(utf8[index + 1], acceptingUppercase: false)
            else { return nil }
            out.append(high << 4 | low)
            index += 2
        }
        return out
    }

    static func nibble(_ character: UInt8, acceptingUppercase: Bool) -> UInt8? {
        switch character {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): character - 0x30
        case UInt8(ascii: "a")...UInt8(ascii: "f"): character - 0x61 + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F") where acceptingUppercase: character - 0x41 + 10
        default: nil
        }
    }
}
