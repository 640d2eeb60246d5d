import Encoding

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
    /// What the query's own text adds to every input row of an aggregate that keeps them all
    /// (`string_agg`, `json_agg`, …), bounded over the rows the planner expects; nil where it adds
    /// nothing. The per-row check (`Analyzer.checkAccumulations`) cannot see the rows:
    /// `string_agg(repeat('x', 1000), '')` over `generate_series(1, 1000000)` built 1 GB.
    public var accumulation: Accumulation?
    /// What a row of text-made values costs in the hash table of an INTERSECT, EXCEPT or hashed
    /// subplan, bounded over the rows the planner expects there; nil where none is fed by them.
    /// The static check (`Analyzer.checkHashedSetOperation`) counts the text's rows only: a
    /// table's 120 rows joined to `generate_series(1, 1000)` under EXCEPT took 267 MB.
    public var hashedRows: Accumulation?

    public struct Accumulation: Sendable, Equatable {
        /// The most bytes the text adds to each input row.
        public var bytesPerRow: Double
        /// The most bytes it may add over all the rows.
        public var maxBytes: Double
        /// Whether an ARRAY(subquery) gathers a subplan's rows, which then count too.
        public var gathersSubplans: Bool

        public init(bytesPerRow: Double, maxBytes: Double, gathersSubplans: Bool = false) {
            self.bytesPerRow = bytesPerRow
            self.maxBytes = maxBytes
            self.gathersSubplans = gathersSubplans
        }
    }

    public init(maxCost: Double?, maxEstimatedRows: Double?, accumulation: Accumulation? = nil, hashedRows: Accumulation? = nil) {
        self.maxCost = maxCost
        self.maxEstimatedRows = maxEstimatedRows
        self.accumulation = accumulation
        self.hashedRows = hashedRows
    }

    /// What the planner said of one query.
    public struct Estimate: Sendable, Equatable {
        public var totalCost: Double
        /// The largest row estimate of any node.
        public var rows: Double
        /// The most rows an aggregate that keeps every input row takes (`aggregatedRows`), and the
        /// most a subplan other than a WITH query's makes, which ARRAY(subquery) gathers; nil where
        /// the plan shows none.
        public var aggregatedRows: Double?
        public var subplanRows: Double?
        /// The most rows a hashed SetOp (INTERSECT, EXCEPT) or a hashed subplan takes in; nil where
        /// the plan hashes none.
        public var hashedRows: Double?

        public init(totalCost: Double, rows: Double, aggregatedRows: Double? = nil, subplanRows: Double? = nil, hashedRows: Double? = nil) {
            self.totalCost = totalCost
            self.rows = rows
            self.aggregatedRows = aggregatedRows
            self.subplanRows = subplanRows
            self.hashedRows = hashedRows
        }

        /// The rows what the text adds is multiplied by: the largest node's where the plan shows
        /// no node that gathers (fail closed).
        func accumulatedRows(includingSubplans: Bool) -> Double {
            let gathered = [aggregatedRows, includingSubplans ? subplanRows : nil].compactMap { $0 }
            return gathered.max() ?? rows
        }
    }

    /// The prefix that turns an admitted query into its estimate, without running it.
    /// VERBOSE names each node's output, which shows the nodes that compute an accumulating
    /// aggregate (`gatheredRows`).
    public static let explainPrefix = "EXPLAIN (VERBOSE, FORMAT JSON) "

    /// Reads `EXPLAIN (VERBOSE, FORMAT JSON)` output: the top plan's "Total Cost" and the largest "Plan Rows"
    /// of any node. Nil if either is missing, which the caller treats as over budget (fail closed); a
    /// node without "Plan Rows" counts as infinitely many.
    public static func estimate(fromExplainJSON text: some Collection<UInt8>) -> Estimate? {
        guard let document = try? JSONValue.parse(text, explainOptions), let plan = document.arrayValue?.first?["Plan"],
              let totalCost = plan["Total Cost"]?.doubleValue, let rows = largestRows(plan) else { return nil }
        let (aggregated, subplans, hashed) = gatheredRows(plan)
        return Estimate(totalCost: totalCost, rows: rows, aggregatedRows: aggregated, subplanRows: subplans, hashedRows: hashed)
    }

    /// The rows the plan's accumulating aggregates keep: the input of each Aggregate or WindowAgg
    /// node whose output computes one (`json_agg(s.m)`, `string_agg(name, ','::text) OVER (?)`;
    /// the nodes above only pass its value on), and apart, the rows of each subplan but a WITH
    /// query's, which an ARRAY(subquery) gathers. The largest node would also count a scan under a
    /// GROUP BY whose groups are all `json_agg` sees. PostgreSQL 15 does not aggregate these in
    /// parallel parts (they have no combine function), so a node's input is all its rows. Apart
    /// too, the input of each hashed SetOp and the rows of each hashed subplan, which PostgreSQL 15
    /// keeps in hash tables it does not spill.
    static func gatheredRows(_ plan: JSONValue) -> (aggregated: Double?, subplans: Double?, hashed: Double?) {
        var aggregated: Double?, subplans: Double?, hashed: Double?
        func visit(_ node: JSONValue) {
            let children = node["Plans"]?.arrayValue ?? []
            let outputs = node["Output"]?.arrayValue?.compactMap(\.stringValue) ?? []
            if ["Aggregate", "WindowAgg"].contains(node["Node Type"]?.stringValue ?? ""),
               outputs.contains(where: { output in Analyzer.accumulatingAggregates.contains { output.contains($0 + "(") } }) {
                for child in children where !isSubplan(child) {
                    aggregated = max(aggregated ?? 0, child["Plan Rows"]?.doubleValue ?? .infinity)
                }
            }
            if isSubplan(node), !(node["Subplan Name"]?.stringValue ?? "").hasPrefix("CTE ") {
                subplans = max(subplans ?? 0, node["Plan Rows"]?.doubleValue ?? .infinity)
                if (node["Subplan Name"]?.stringValue ?? "").hasPrefix("hashed ") {
                    hashed = max(hashed ?? 0, node["Plan Rows"]?.doubleValue ?? .infinity)
                }
            }
            if node["Node Type"]?.stringValue == "SetOp", node["Strategy"]?.stringValue == "Hashed" {
                for child in children where !isSubplan(child) {
                    hashed = max(hashed ?? 0, child["Plan Rows"]?.doubleValue ?? .infinity)
                }
            }
            children.forEach(visit)
        }
        visit(plan)
        return (aggregated, subplans, hashed)
    }

    private static func isSubplan(_ node: JSONValue) -> Bool {
        ["InitPlan", "SubPlan"].contains(node["Parent Relationship"]?.stringValue ?? "")
    }

    /// Plans nest two JSON levels a node ("Plans", then the node); a query within the profile's
    /// nesting depth plans well inside this.
    static let explainOptions = JSONValue.ParseOptions(maxDepth: 256, integersOnly: false)

    private static func largestRows(_ plan: JSONValue) -> Double? {
        guard let rows = plan["Plan Rows"]?.doubleValue else { return nil }
        return (plan["Plans"]?.arrayValue ?? []).reduce(rows) { max($0, largestRows($1) ?? .infinity) }
    }

    /// The rule an estimate breaks, if any; costs first, as the larger hazard.
    public func violation(of estimate: Estimate) -> Rule? {
        if let maxCost, !(estimate.totalCost <= maxCost) { return .costLimit }
        if let maxEstimatedRows, !(estimate.rows <= maxEstimatedRows) { return .estimatedRows }
        if accumulates(past: estimate) || hashes(past: estimate) { return .argumentLimit }
        return nil
    }

    private func accumulates(past estimate: Estimate) -> Bool {
        guard let accumulation else { return false }
        return !(estimate.accumulatedRows(includingSubplans: accumulation.gathersSubplans) * accumulation.bytesPerRow <= accumulation.maxBytes)
    }

    private func hashes(past estimate: Estimate) -> Bool {
        guard let hashedRows, let rows = estimate.hashedRows else { return false }
        return !(rows * hashedRows.bytesPerRow <= hashedRows.maxBytes)
    }

    /// The refusal's message for the client, detail-free: the caller adds the rule and request id.
    ///
    /// It names the limit but never the estimate. The planner estimates from `reltuples` and
    /// `pg_statistic`, which count every tenant's rows: printed, the estimate of `… WHERE note = 'x'`
    /// tells a tenant how often another tenant's rows hold 'x', and `… a, … b` how many rows the
    /// table has. The number goes to the audit record only (`auditMessage`). Whether a query is over
    /// the limit still says one bit about those statistics; the README states that residue.
    public func message(for rule: Rule, estimate: Estimate?) -> String {
        guard estimate != nil else {
            return "Palisade could not read the planner's estimate for this query, so it was not run"
        }
        if rule == .argumentLimit, let estimate, hashes(past: estimate), let hashedRows {
            return "Palisade: this query's INTERSECT, EXCEPT or subquery under IN, ANY or ALL may keep every row it takes in a hash table the server does not spill to disk, and the query's text makes up to \(Self.spell(hashedRows.bytesPerRow.rounded(.up))) bytes of each; over the rows the planner expects there that passes this profile's limit of \(Self.spell(hashedRows.maxBytes)) bytes (64 × max_function_result_bytes); it was not run"
        }
        if rule == .argumentLimit, let accumulation {
            return "Palisade: an aggregate in this query keeps every input row, and the query's text adds up to \(Self.spell(accumulation.bytesPerRow.rounded(.up))) bytes to each; over the rows the planner expects that passes this profile's limit of \(Self.spell(accumulation.maxBytes)) bytes (64 × max_function_result_bytes); it was not run"
        }
        if rule == .costLimit {
            return "Palisade: the planner's cost estimate for this query is over this profile's max_cost of \(Self.spell(maxCost ?? 0)); it was not run"
        }
        return "Palisade: the planner estimates more rows in this query's plan than this profile's max_estimated_rows of \(Self.spell(maxEstimatedRows ?? 0)); it was not run"
    }

    /// The refusal's message with the estimate, for the audit record that reviewers read.
    public func auditMessage(for rule: Rule, estimate: Estimate?) -> String {
        let message = message(for: rule, estimate: estimate)
        guard let estimate else { return message }
        return message + " (estimate: cost \(Self.spell(estimate.totalCost)), \(Self.spell(estimate.rows)) rows at the largest node)"
    }

    public func hint(for rule: Rule) -> String {
        guard rule == .argumentLimit else { return Self.hint }
        return "Aggregate the rows' own columns with short delimiters and labels, build long text once outside the aggregate, or aggregate fewer rows (a narrower WHERE or generate_series)."
    }

    static let hint =
        "Join on a condition (JOIN … ON a.id = b.id), filter with WHERE, bound generate_series and recursive queries, or aggregate over fewer rows. EXPLAIN (COSTS OFF) shows the plan."

    /// Whole numbers as digits, larger ones in scientific notation (1.2e+12), as a reader compares them.
    static func spell(_ value: Double) -> String {
        if value < 1e9, value == value.rounded() { return String(Int64(value)) }
        return String(format: "%.3g", value)
    }
}
