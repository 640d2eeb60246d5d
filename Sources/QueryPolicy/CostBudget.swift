/// A profile's limits on the planner's estimate of a query whose shape can explode (a join, a
/// set-returning function, WITH RECURSIVE): such a query is first planned with `EXPLAIN (FORMAT
/// JSON)` on the same server session, with the tenant's claims and the query's own parameter
/// values, and refused with 54000 if the estimate is over a limit.
///
/// The estimate is taken for every execution, never cached: it depends on the constants and the
/// parameter values, so two texts with one fingerprint can differ by orders of magnitude.
public struct CostBudget: Sendable, Equatable {
    /// Largest total cost of the plan, in the planner's units (a sequential page read is 1).
    public var maxCost: Double?
    /// Most rows any node of the plan is estimated to produce: a join's intermediate rows count,
    /// even under an aggregate that returns one.
    public var maxEstimatedRows: Double?

    public init(maxCost: Double?, maxEstimatedRows: Double?) {
        self.maxCost = maxCost
        self.maxEstimatedRows = maxEstimatedRows
    }

    /// What the planner said of one query.
    public struct Estimate: Sendable, Equatable {
        public var totalCost: Double
        /// The largest row estimate of any node.
        public var rows: Double

        public init(totalCost: Double, rows: Double) {
            self.totalCost = totalCost
            self.rows = rows
        }
    }

    /// The prefix that turns an admitted query into its estimate, without running it.
    public static let explainPrefix = "EXPLAIN (FORMAT JSON) "

    /// Reads `EXPLAIN (FORMAT JSON)` output: the top plan's "Total Cost" (the first one, since a
    /// node's own fields come before its "Plans") and the largest "Plan Rows" of any node. Nil if
    /// the text has neither, which the caller treats as over budget (fail closed).
    public static func estimate(fromExplainJSON text: some Collection<UInt8>) -> Estimate? {
        var totalCost: Double?
        var rows: Double?
        var scanner = KeyScanner(text: Array(text))
        while let (key, value) = scanner.nextNumberField() {
            switch key {
            case "Total Cost": if totalCost == nil { totalCost = value }
            case "Plan Rows": rows = max(rows ?? 0, value)
            default: break
            }
        }
        guard let totalCost, let rows else { return nil }
        return Estimate(totalCost: totalCost, rows: rows)
    }

    /// The rule an estimate breaks, if any; costs first, as the larger hazard.
    public func violation(of estimate: Estimate) -> Rule? {
        if let maxCost, !(estimate.totalCost <= maxCost) { return .costLimit }
        if let maxEstimatedRows, !(estimate.rows <= maxEstimatedRows) { return .estimatedRows }
        return nil
    }

    /// The refusal's message, detail-free: the caller adds the rule and request id.
    public func message(for rule: Rule, estimate: Estimate?) -> String {
        guard let estimate else {
            return "Palisade could not read the planner's estimate for this query, so it was not run"
        }
        if rule == .costLimit {
            return "Palisade: the planner estimates this query's cost at \(Self.spell(estimate.totalCost)), over this profile's max_cost of \(Self.spell(maxCost ?? 0)); it was not run"
        }
        return "Palisade: the planner estimates \(Self.spell(estimate.rows)) rows in this query's plan, over this profile's max_estimated_rows of \(Self.spell(maxEstimatedRows ?? 0)); it was not run"
    }

    public static let hint =
        "Join on a condition (JOIN … ON a.id = b.id), filter with WHERE, bound generate_series and recursive queries, or aggregate over fewer rows. EXPLAIN (COSTS OFF) shows the plan."

    /// Whole numbers as digits, larger ones in scientific notation (1.2e+12), as a reader compares them.
    static func spell(_ value: Double) -> String {
        if value < 1e9, value == value.rounded() { return String(Int64(value)) }
        return String(format: "%.3g", value)
    }

    /// Finds `"key": number` pairs in JSON text; strings elsewhere are skipped whole, so a key
    /// spelled inside a string value (an identifier in the plan) is never taken for one.
    struct KeyScanner {
        let text: [UInt8]
        var index = 0

        mutating func nextNumberField() -> (String, Double)? {
            while index < text.count {
                guard text[index] == UInt8(ascii: "\"") else { index += 1; continue }
                guard let string = readString() else { return nil }
                skipSpaces()
                guard index < text.count, text[index] == UInt8(ascii: ":") else { continue }
                index += 1
                skipSpaces()
                let start = index
                while index < text.count, Self.numberBytes.contains(text[index]) { index += 1 }
                if index > start, let number = Double(String(decoding: text[start..<index], as: UTF8.self)) {
                    return (string, number)
                }
            }
            return nil
        }

        /// Reads a string at `index` (at its opening quote); its text without decoding escapes,
        /// which plan keys never have.
        private mutating func readString() -> String? {
            index += 1
            let start = index
            while index < text.count {
                switch text[index] {
                case UInt8(ascii: "\\"): index += 2
                case UInt8(ascii: "\""):
                    defer { index += 1 }
                    return String(decoding: text[start..<index], as: UTF8.self)
                default: index += 1
                }
            }
            return nil
        }

        private mutating func skipSpaces() {
            while index < text.count, [0x20, 0x0A, 0x0D, 0x09].contains(text[index]) { index += 1 }
        }

        static let numberBytes = Set("0123456789+-.eE".utf8)
    }
}
