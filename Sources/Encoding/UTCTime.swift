#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// UTC times as text, written without DateFormatter (which is slow and locale-dependent) so hot
/// paths stay cheap and the text has one spelling per instant. Audit entries use microseconds, the
/// 27-character form `2025-06-01T12:34:56.123456Z`; messages use whole seconds, `2025-06-01T12:34:56Z`.
public enum UTCTime {
    public static func nowMicros() -> Int64 {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        return Int64(spec.tv_sec) * 1_000_000 + Int64(spec.tv_nsec) / 1_000
    }

    public static func format(_ micros: Int64) -> String {
        var out: [UInt8] = []
        append(micros, to: &out)
        return String(decoding: out, as: UTF8.self)
    }

    /// `2025-06-01T12:34:56.123456Z`.
    public static func append(_ micros: Int64, to out: inout [UInt8]) {
        let seconds = micros >= 0 ? micros / 1_000_000 : (micros - 999_999) / 1_000_000
        appendDateTime(seconds, to: &out)
        out.append(UInt8(ascii: "."))
        appendDigits(micros - seconds * 1_000_000, width: 6, to: &out)
        out.append(UInt8(ascii: "Z"))
    }

    /// `2025-06-01T12:34:56Z`, for messages; for years 1 to 9999.
    public static func formatSeconds(_ seconds: Int64) -> String {
        var out: [UInt8] = []
        appendDateTime(seconds, to: &out)
        out.append(UInt8(ascii: "Z"))
        return String(decoding: out, as: UTF8.self)
    }

    /// `2025-06-01T12:34:56`, the part both forms share.
    static func appendDateTime(_ seconds: Int64, to out: inout [UInt8]) {
        let days = seconds >= 0 ? seconds / 86_400 : (seconds - 86_399) / 86_400
        let secondOfDay = seconds - days * 86_400
        let (year, month, day) = civil(fromDays: days)
        appendDigits(year, width: 4, to: &out); out.append(UInt8(ascii: "-"))
        appendDigits(month, width: 2, to: &out); out.append(UInt8(ascii: "-"))
        appendDigits(day, width: 2, to: &out); out.append(UInt8(ascii: "T"))
        appendDigits(secondOfDay / 3600, width: 2, to: &out); out.append(UInt8(ascii: ":"))
        appendDigits(secondOfDay / 60 % 60, width: 2, to: &out); out.append(UInt8(ascii: ":"))
        appendDigits(secondOfDay % 60, width: 2, to: &out)
    }

    static func appendDigits(_ value: Int64, width: Int, to out: inout [UInt8]) {
        var divisor: Int64 = 1
        for _ in 1..<width { divisor *= 10 }
        var rest = value
        while divisor > 0 {
            out.append(0x30 + UInt8(rest / divisor % 10))
            rest %= divisor
            divisor /= 10
        }
    }

    /// Only the exact form the log writes: anything else is not what the writer produced.
    public static func parseEntryTime(_ text: String) -> Int64? {
        guard text.utf8.count == 27, let micros = parseISO8601(text), format(micros) == text else { return nil }
        return micros
    }

    /// ISO 8601 as a person types it for `--since`/`--until`: a date (`2025-06-01`, midnight UTC),
    /// or a date and time with optional seconds and fraction, and `Z` or `±hh:mm` (UTC if omitted).
    public static func parseISO8601(_ text: String) -> Int64? {
        var bytes = Array(text.utf8)[...]
        func number(_ width: Int) -> Int64? {
            guard bytes.count >= width else { return nil }
            var value: Int64 = 0
            for byte in bytes.prefix(width) {
                guard (0x30...0x39).contains(byte) else { return nil }
                value = value * 10 + Int64(byte - 0x30)
            }
            bytes = bytes.dropFirst(width)
            return value
        }
        func take(_ ascii: Character) -> Bool {
            guard bytes.first == UInt8(ascii: ascii.unicodeScalars.first!) else { return false }
            bytes = bytes.dropFirst()
            return true
        }
        guard let year = number(4), take("-"), let month = number(2), take("-"), let day = number(2),
              (1...12).contains(month), (1...daysIn(month: month, year: year)).contains(day)
        else { return nil }
        var seconds = days(fromCivil: year, month, day) * 86_400
        var micros: Int64 = 0
        if bytes.isEmpty { return seconds * 1_000_000 }
        guard take("T") || take(" "), let hour = number(2), take(":"), let minute = number(2),
              hour < 24, minute < 60 else { return nil }
        seconds += hour * 3600 + minute * 60
        if take(":") {
            guard let second = number(2), second < 60 else { return nil }
            seconds += second
            if take(".") || take(",") {
                var scale: Int64 = 100_000
                var digitCount = 0
                while let byte = bytes.first, (0x30...0x39).contains(byte) {
                    micros += Int64(byte - 0x30) * scale
                    scale /= 10
                    digitCount += 1
                    bytes = bytes.dropFirst()
                }
                // Beyond microseconds the log has no precision to compare against.
                guard digitCount > 0, digitCount <= 9 else { return nil }
            }
        }
        if take("Z") || bytes.isEmpty {
            return bytes.isEmpty ? seconds * 1_000_000 + micros : nil
        }
        let sign: Int64
        if take("+") { sign = 1 } else if take("-") { sign = -1 } else { return nil }
        guard let offsetHours = number(2), take(":"), let offsetMinutes = number(2), bytes.isEmpty,
              offsetHours < 24, offsetMinutes < 60 else { return nil }
        seconds -= sign * (offsetHours * 3600 + offsetMinutes * 60)
        return seconds * 1_000_000 + micros
    }

    // Howard Hinnant's days-from-civil algorithms: exact for the proleptic Gregorian calendar.
    static func days(fromCivil year: Int64, _ month: Int64, _ day: Int64) -> Int64 {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let doy = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }

    static func civil(fromDays days: Int64) -> (Int64, Int64, Int64) {
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let day = doy - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        return (yoe + era * 400 + (month <= 2 ? 1 : 0), month, day)
    }

    static func daysIn(month: Int64, year: Int64) -> Int64 {
        switch month {
        case 2: (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28
        case 4, 6, 9, 11: 30
        default: 31
        }
    }
}
