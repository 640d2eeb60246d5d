import Foundation

/// Text for messages that reach clients and the audit log. Written by hand because
/// DateFormatter is locale-dependent and slow, and these run on every refusal.
enum Formatting {
    /// `2026-11-23T07:00:00Z`; fractional seconds are dropped (`roundUp` rounds to the next
    /// second instead, for "retry after" times a client must not act on too early).
    static func utc(_ date: Date, roundUp: Bool = false) -> String {
        let raw = date.timeIntervalSince1970
        // Claims can carry any number; keep the arithmetic inside Int64 and the year in 4 digits.
        let clamped = min(max(roundUp ? raw.rounded(.up) : raw.rounded(.down), -62_135_596_800), 253_402_300_799)
        let seconds = Int64(clamped)
        let days = seconds >= 0 ? seconds / 86_400 : (seconds - 86_399) / 86_400
        let secondOfDay = seconds - days * 86_400
        let (year, month, day) = civil(fromDays: days)
        func pad(_ value: Int64, _ width: Int) -> String {
            let text = String(value)
            return String(repeating: "0", count: max(0, width - text.count)) + text
        }
        return "\(pad(year, 4))-\(pad(month, 2))-\(pad(day, 2))T\(pad(secondOfDay / 3600, 2)):\(pad(secondOfDay / 60 % 60, 2)):\(pad(secondOfDay % 60, 2))Z"
    }

    /// Howard Hinnant's days-to-civil algorithm (proleptic Gregorian).
    private static func civil(fromDays days: Int64) -> (Int64, Int64, Int64) {
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

    /// "60 s", "1.5 s", "120 ms": the unit a person reading an error expects.
    static func duration(_ duration: Duration) -> String {
        let ms = milliseconds(duration, roundUp: false)
        if ms < 1000 { return "\(milliseconds(duration, roundUp: true)) ms" }
        if ms % 1000 == 0 { return "\(ms / 1000) s" }
        return "\(number(Double(ms) / 1000)) s"
    }

    static func milliseconds(_ duration: Duration, roundUp: Bool) -> Int64 {
        let (seconds, attoseconds) = duration.components
        let perMs: Int64 = 1_000_000_000_000_000
        let extra = attoseconds / perMs + (roundUp && attoseconds % perMs > 0 ? 1 : 0)
        return seconds * 1000 + extra
    }

    static func seconds(_ duration: Duration) -> Double {
        let (seconds, attoseconds) = duration.components
        return Double(seconds) + Double(attoseconds) / 1e18
    }

    /// "100" for whole numbers, "2.5" otherwise.
    static func number(_ value: Double) -> String {
        if value.isFinite, value == value.rounded(), abs(value) < 1e15 { return String(Int64(value)) }
        return String(value)
    }

    /// A value taken from a token, fit to quote in a message: bounded, no control characters.
    static func quoted(_ text: String) -> String {
        var out = ""
        for scalar in text.unicodeScalars.prefix(64) {
            out.unicodeScalars.append(scalar.properties.generalCategory == .control ? "?" : scalar)
        }
        return "'" + out + (text.unicodeScalars.count > 64 ? "…" : "") + "'"
    }
}
