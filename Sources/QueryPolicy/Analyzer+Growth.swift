import CPalisadeSupport

/// Growth that no single call shows: aggregates that keep every input row's value, and recursive
/// queries whose every step may double a value.
extension Analyzer {
    /// Aggregates whose state keeps every input value (or a copy of its text): their result is the
    /// argument's size times the number of input rows, which Palisade cannot bound. Ordered-set
    /// aggregates (`percentile_disc(…) WITHIN GROUP`, `mode()`) and DISTINCT inputs go through a
    /// tuplesort, which spills to disk past work_mem, and keep only one value in memory.
    static let accumulatingAggregates: Set<String> = [
        "string_agg", "array_agg", "json_agg", "jsonb_agg", "json_object_agg", "jsonb_object_agg", "xmlagg",
        // Keeps every input range until it merges them at the end (5,000 rows of 64 KB ranges: 659 MB, ninth red team).
        "range_agg",
        // PostgreSQL 16 and later.
        "json_agg_strict", "jsonb_agg_strict", "json_object_agg_strict", "jsonb_object_agg_strict",
        "json_object_agg_unique", "jsonb_object_agg_unique", "json_object_agg_unique_strict", "jsonb_object_agg_unique_strict",
    ]

    /// The most bytes the text may add to each input row of an accumulating aggregate. A table's
    /// column counts as one byte, so this bounds what the query's text makes per row, not the data:
    /// delimiters, labels and JSON keys (`json_build_object('id', id, 'name', name)`, `lpad(x, 20)`,
    /// `format('%-20s %10s', a, b)`) stay well under it, while any text that reaches the policy's
    /// function limit (`repeat('x', 1000000)`, `'a'::char(262144)`) is far over it.
    static let maxAccumulatedBytesPerRow = 1024.0

    /// What the text may add over all of an accumulating aggregate's rows, in multiples of the
    /// policy's max_function_result_bytes: 64 MiB at the default, so delimiters and JSON labels over
    /// tens of millions of rows stay admitted, and 1 KiB a row over a million generated rows (1 GB,
    /// the red team's follow-up to this file's per-row limit) does not. Checked against the planner's
    /// estimate before the query runs (`CostBudget.accumulation`).
    static let accumulatedResultMultiple = 64.0

    /// What the text may add to every row of a table's without the planner being asked: half the
    /// per-row allowance, a few times what a row itself holds, so that the text's part stays of the
    /// data's order (a table's own text accumulates in full, `string_agg(t::text, '')`). Labels,
    /// keys and formats in reports take tens to a few hundred as sized (a daily digest's
    /// `format('%s: %s orders, $%s', to_char(d, 'YYYY-MM-DD'), …)` 259), and the planner's group
    /// estimates are unreliable: a GROUP BY on `date_trunc('month', ts)` over 2 million rows was
    /// estimated at 2 million groups for 23, which refused monthly reports at 16 bytes. Rows the
    /// text makes are counted whatever it adds.
    static let accumulatedBytesBelowNotice = 512.0

    static func maxAccumulatedBytes(_ policy: Policy) -> Double {
        Double(policy.maxFunctionResultBytes) * accumulatedResultMultiple
    }

    /// What a row costs in the hash table of an INTERSECT or EXCEPT besides its values: a million
    /// rows of two integers took a backend 149 MB (sixteenth red team, PostgreSQL 15).
    static let hashedSetRowBytes = 150.0

    /// PostgreSQL 15 runs INTERSECT and EXCEPT as a hash table of every distinct input row when the
    /// planner's count of groups fits work_mem, and never spills it; a subquery under IN, ANY or ALL
    /// as a hashed subplan when its rows at the planner's width fit (a text's value is guessed at
    /// 32 bytes: 30,000 rows of `lpad(…, 10000, …)` under NOT IN took 309 MB). The count of a column
    /// the query makes is a default 200 even where the rows are known (`generate_series(1, 1000000)`),
    /// so the rows the text makes are held to what an aggregate may keep of them, those of WITH
    /// RECURSIVE at the most a set-returning call may make (the planner guessed 31 rows where
    /// 100,000 took 231 MB). A table's rows have statistics, and the planner sorts them when they do
    /// not fit.
    mutating func checkHashedSetOperation(within maxBytes: Double) throws {
        // A join's hash table of rows of one key does not spill either: 1,000 generated rows of
        // `repeat('x', 1000000)` joined on a constant took 979 MB (eighteenth red team, second pass).
        // Rows of large values the text makes are held as a hashed set's are.
        let joinsLargeRows = analysis.madeBytes > Self.maxAccumulatedBytesPerRow && joinsMadeRows
        guard hashesSetOperationRows || joinsLargeRows else { return }
        // Over a table's rows too, planned: the static count knows only the text's.
        if analysis.textMadeRows > 1 || analysis.madeBytes > 0 || hashesUnboundedRows {
            analysis.hashedRowBytes = Self.hashedSetRowBytes + analysis.madeBytes
        }
        let rows = hashesUnboundedRows ? max(analysis.textMadeRows, Double(shared.policy.maxGeneratedRows)) : analysis.textMadeRows
        let bytes = (Self.hashedSetRowBytes + analysis.madeBytes) * rows
        guard bytes > maxBytes else { return }
        throw Denial(rule: .argumentLimit,
                     message: "INTERSECT, EXCEPT, a subquery under IN, ANY or ALL, and a join of rows of one key may keep every row of their inputs in a hash table the server does not spill to disk, and the query's set-returning calls, VALUES lists and WITH queries make up to \(Self.describe(rows)) rows of up to \(Self.describe(Self.hashedSetRowBytes + analysis.madeBytes)) bytes each: \(Self.describe(bytes)) bytes, over this policy's limit of \(Self.describe(maxBytes)) bytes (64 × max_function_result_bytes)",
                     hint: "Make fewer rows, or compare with NOT EXISTS (…) or EXISTS (…), which the server joins within work_mem.",
                     offset: nil, statementType: analysis.statementType)
    }

    /// An accumulating aggregate call, checked when the whole query has been read: whether its
    /// columns come from rows the query makes, and what those rows' calls make, is known only then.
    /// What its arguments' constants and text-building calls make a row the copy reader sizes
    /// (`copyAccumulated`), through the rows the query makes too; this keeps what only the walk
    /// sees: the padding of `char(n)` and `bit(n)` casts, arrays of numbers (`array_fill`) and
    /// numbers' digits.
    struct Accumulation {
        var name: String
        /// What padding casts, number arrays and numbers' digits in the arguments make per row.
        var padded: Double
        var offset: Int?
        /// The parameters whose values the arguments keep (`reachingParameters`).
        var parameters: Set<Int> = []
        /// The columns the arguments read, as written (`o.id` is ["o", "id"]), which may be ones of
        /// rows the query makes.
        var columns: [[String?]] = []
        /// What each element costs the server to put out as text (`convertedElementBytes`).
        var converted = 0.0
    }

    /// What the server holds for each range, multirange or row of an array or range_agg while it
    /// puts the whole out as text (each element's text is kept to the end): about 3.2 KB for a range
    /// and 1.1 KB for a row (`array_agg(int4range(…))` over a million generated rows took 3.2 GB,
    /// `range_agg` 3.3 GB, eighteenth red team, fifth pass). Counted over the rows, not against the
    /// per-row allowance.
    static let convertedElementBytes = 4096.0

    /// Whether a value in `node` is a range, multirange or row (a constructor or a cast to one).
    static func convertsElementsAtLength(_ node: UnsafeBufferPointer<UInt8>) -> Bool {
        if node.contains("{\"RowExpr\":") { return true }
        for type in ["int4", "int8", "num", "ts", "tstz", "date"]
        where node.contains("{\"String\":{\"sval\":\"\(type)range\"}}") || node.contains("{\"String\":{\"sval\":\"\(type)multirange\"}}") {
            return true
        }
        return false
    }

    /// The bytes the number constants in `range` state as text (`12345678901::text`, 3,000 nines):
    /// the copy reader counts a number as a few bytes, so that texts differing only in their numbers
    /// share a decision; where an aggregate keeps each row, the digits are read (and so not shared).
    mutating func numberLiteralBytes(_ range: Range<Int>) -> Double {
        let node = UnsafeBufferPointer(rebasing: tree[range])
        var bytes = 0.0
        node.forEachOccurrence(of: "{\"A_Const\":{") { offset in
            var probe = ParseTreeCursor(node)
            probe.offset = offset
            guard (try? probe.skipValue()) != nil else { bytes = .infinity; return }
            let constant = UnsafeBufferPointer(rebasing: node[offset..<probe.offset])
            guard constant.contains("\"ival\":") || constant.contains("\"fval\":") else { return }
            bytes += max(1, Double(probe.offset - offset) - 40)
        }
        if bytes > 0 { analysis.readsConstantValues = true }
        return bytes + numberTextBytes(node)
    }

    /// The bytes the constants in `range` of the tree state: each literal's node less its fixed
    /// JSON wrapping (`{"A_Const":{"sval":{"sval":""},"location":N}}`, N of one digit), escapes
    /// counted as written, so never less than the value's bytes. N's digits do not count: a number
    /// before the constant moves it, and texts that differ only in their numbers and compared
    /// strings share a decision (`LiteralBlindKey`; eighteenth red team, sixth pass).
    mutating func literalBytes(_ range: Range<Int>) -> Double {
        let node = UnsafeBufferPointer(rebasing: tree[range])
        var bytes = 0.0
        var readsNumbers = false
        node.forEachOccurrence(of: "{\"A_Const\":{") { offset in
            var probe = ParseTreeCursor(node)
            probe.offset = offset
            guard (try? probe.skipValue()) != nil else { bytes = .infinity; return }
            let constant = UnsafeBufferPointer(rebasing: node[offset..<probe.offset])
            bytes += max(1, Double(constant.count - Self.locationDigits(constant)) - 39)
            if constant.contains("\"ival\":") || constant.contains("\"fval\":") { readsNumbers = true }
        }
        // A number's digits count here, and texts that differ only in their numbers share a
        // decision (`LiteralBlindKey`) unless a rule read a constant's value: this one does.
        if readsNumbers { analysis.readsConstantValues = true }
        return bytes + numberTextBytes(node)
    }

    /// How many bytes the value of the last `"location":` field in `node` takes (`-1`: 2).
    static func locationDigits(_ node: UnsafeBufferPointer<UInt8>) -> Int {
        let field: StaticString = "\"location\":"
        var digits = 0
        node.forEachOccurrence(of: field) { offset in
            var end = offset + field.utf8CodeUnitCount
            while end < node.count, node[end] == UInt8(ascii: "-") || (node[end] >= UInt8(ascii: "0") && node[end] <= UInt8(ascii: "9")) { end += 1 }
            digits = end - offset - field.utf8CodeUnitCount
        }
        return digits
    }

    /// Bytes that numbers the text makes may take as text beyond what their literals show: a
    /// numeric literal with an exponent is that many digits (`1e131071`, 10 bytes in the tree, is
    /// 131,072 characters as text), and a number raised by `^`, `power`, `exp` or `factorial` may
    /// reach numeric's largest, about 147k digits; as the policy's limit, like a call that
    /// allocates. Sixth red team: `repeat(1e131071::text, 8000)` and `string_agg(1e131071::text, '')`
    /// were sized at 24 bytes a number and built 1–2 GB.
    mutating func numberTextBytes(_ node: UnsafeBufferPointer<UInt8>) -> Double {
        if Self.growsNumbers(node) { return Double(shared.policy.maxFunctionResultBytes) }
        var bytes = 0.0
        forEachLongNumber(node, readsValues: true) { bytes += $0 }
        return max(0, bytes)
    }

    /// Hands `body` the characters beyond 24 that each number literal with an exponent in `node`,
    /// and each string's numbers with one, take as text (a string only compared is passed over;
    /// any other is read for its numbers, and the decision then depends on its value where
    /// `readsValues`: a size that grows with them does).
    mutating func forEachLongNumber(_ node: UnsafeBufferPointer<UInt8>, readsValues: Bool, _ body: (Double) -> Void) {
        // Number literals, and strings that read as numbers (`round('1e131071'::numeric)`: the cast
        // may sit anywhere below a call Palisade does not evaluate). Only an exponent is counted:
        // plain digits are taken out for the literal-blind cache, and their decision must not
        // depend on how many there are (strings stay in the key as written).
        for (needle, isString): (StaticString, Bool) in [("\"fval\":\"", false), ("\"sval\":{\"sval\":\"", true)] {
            node.forEachOccurrence(of: needle) { offset in
                if isString {
                    // A string only compared is never made text of another size; any other is read
                    // for its numbers, and the decision then depends on its value.
                    if isComparedString(valueAt: offset, of: node) { return }
                    if readsValues { analysis.readsConstantValues = true }
                }
                let start = offset + needle.utf8CodeUnitCount
                var end = start
                // Up to the closing quote, past escaped ones (a json's `{\"a\":1e131071}`).
                while end < node.count, node[end] != UInt8(ascii: "\"") { end += node[end] == UInt8(ascii: "\\") ? 2 : 1 }
                end = min(end, node.count)
                let raw = UnsafeBufferPointer(rebasing: node[start..<end])
                // Only an exponent after a digit counts (libpg_query's JSON never escapes a letter):
                // 'agent 12%' is not read as numbers (16k instructions a text in a debug build).
                guard Self.mayHoldExponent(raw) else { return }
                // As the server reads it: the parse tree's JSON escapes (`\f` in E'…\f1e131071') decoded.
                let decoded = raw.contains(UInt8(ascii: "\\"))
                    ? try? ParseTreeCursor.decoded(ParseTreeCursor.Bytes(start: raw.baseAddress!, count: raw.count), escaped: true)
                    : String(decoding: raw, as: UTF8.self)
                // A literal that cannot be read counts as the limit (fail closed), not as nothing.
                guard let literal = decoded else { body(Double(shared.policy.maxFunctionResultBytes)); return }
                guard literal.contains(where: { $0 == "e" || $0 == "E" }) else { return }
                if Double(literal.trimmingSpaces) != nil {
                    body(Self.numericTextBytes(literal.trimmingSpaces) - 24)
                } else {
                    body(Self.embeddedNumbersTextBytes(literal))
                }
            }
        }
    }

    /// Whether `raw` has an `e` or `E` after a digit or a point, backslashes passed over (the array
    /// and range readers take `1\e5` as `1e5`).
    static func mayHoldExponent(_ raw: UnsafeBufferPointer<UInt8>) -> Bool {
        var previous: UInt8 = 0
        for byte in raw where byte != UInt8(ascii: "\\") {
            if byte | 0x20 == UInt8(ascii: "e"), previous == UInt8(ascii: ".") || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(previous) { return true }
            previous = byte
        }
        return false
    }

    /// The most digits a number the text writes may have. The planner computes arithmetic over
    /// constants before the query runs, where no cancel reaches numeric's multiplication:
    /// 2,133 of `(1e65000/7)*(1e65000/7)>0` (64 KB) ran 124.6 s past a 2 s statement_timeout, and
    /// each `+0` over `1e131071/7` kept a 65 KB value (546 terms of 50, 1.83 GB; thirty-eighth red
    /// team, fourth pass). A thousand digits is far past any measure's.
    static let mostNumberDigits = 1_000.0

    /// Refuses a number literal, or a string's number, with an exponent of more digits than that.
    mutating func checkNumberSizes() throws {
        // A refusal only: a string not compared is in the key of texts that share a decision as
        // written (or the text is decided alone), so the decision may read it.
        var largest = 0.0
        forEachLongNumber(tree, readsValues: false) { largest = max(largest, $0) }
        guard largest > Self.mostNumberDigits else { return }
        throw Denial(rule: .argumentLimit,
                     message: "this query writes a number of about \(Self.describe(largest + 24)) digits (an exponent such as 1e65000), over the limit of \(Int(Self.mostNumberDigits)): PostgreSQL's planner computes arithmetic over such numbers before the query runs, where a cancel or statement_timeout cannot stop it",
                     hint: "Write numbers of at most \(Int(Self.mostNumberDigits)) digits; use float8 (1e300::float8) for magnitudes.",
                     offset: nil, statementType: analysis.statementType)
    }

    /// Numbers with an exponent inside a string that is not one number: elements of an array
    /// ('{1e131071,…}'::numeric[]), values in json or a jsonpath, bounds of a range. Each is as many
    /// characters as text as a literal would be (7,000 in an array made 917 MB; tenth red team). A
    /// number counts where no letter, digit, `.` or `_` touches it on either side, after backslashes
    /// are taken out (the array and range readers take `\1e131071` as `1e131071`); the hex digits
    /// of a uuid ('550e8400-e29b-…') are not numbers.
    static func embeddedNumbersTextBytes(_ text: String) -> Double {
        let bytes = Array(text.utf8).filter { $0 != UInt8(ascii: "\\") }
        let uuids = uuidMask(bytes)
        func isDigit(_ byte: UInt8) -> Bool { (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) }
        func delimits(_ byte: UInt8) -> Bool { !(isDigit(byte) || byte == UInt8(ascii: ".") || byte == UInt8(ascii: "_") || (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte | 0x20)) }
        var total = 0.0, index = 0
        while index < bytes.count {
            guard bytes[index] | 0x20 == UInt8(ascii: "e"), !uuids[index] else { index += 1; continue }
            // The number around this `e`: digits and a point before it, a sign and digits after.
            var start = index
            while start > 0, bytes[start - 1] == UInt8(ascii: ".") || isDigit(bytes[start - 1]) { start -= 1 }
            var end = index + 1
            if end < bytes.count, bytes[end] == UInt8(ascii: "+") || bytes[end] == UInt8(ascii: "-") { end += 1 }
            let digits = end
            while end < bytes.count, isDigit(bytes[end]) { end += 1 }
            defer { index = max(end, index + 1) }
            guard start < index, end > digits, start == 0 || delimits(bytes[start - 1]), end == bytes.count || delimits(bytes[end]) else { continue }
            total += numericTextBytes(String(decoding: bytes[start..<end], as: UTF8.self)) - 24
        }
        return max(0, total)
    }

    /// Which bytes belong to a uuid written out (8-4-4-4-12 hex digits) anywhere in the text.
    static func uuidMask(_ bytes: [UInt8]) -> [Bool] {
        var mask = [Bool](repeating: false, count: bytes.count)
        guard bytes.count >= 36 else { return mask }
        for start in 0...(bytes.count - 36) where bytes[start + 8] == UInt8(ascii: "-") && isUUID(bytes[start..<(start + 36)]) {
            for index in start..<(start + 36) { mask[index] = true }
        }
        return mask
    }

    /// 8-4-4-4-12 hex digits, as a uuid is written.
    static func isUUID(_ bytes: ArraySlice<UInt8>) -> Bool {
        guard bytes.count == 36 else { return false }
        return bytes.indices.allSatisfy { index in
            [8, 13, 18, 23].contains(index - bytes.startIndex) ? bytes[index] == UInt8(ascii: "-")
                : (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[index]) || (UInt8(ascii: "a")...UInt8(ascii: "f")).contains(bytes[index] | 0x20)
        }
    }

    static let numberGrowingFunctions = ["power", "pow", "exp", "factorial"]

    static func growsNumbers(_ node: UnsafeBufferPointer<UInt8>) -> Bool {
        node.contains("{\"String\":{\"sval\":\"^\"}}") || numberGrowingFunctions.contains { node.contains("{\"String\":{\"sval\":\"\($0)\"}}") }
    }

    /// The characters of a numeric literal as text, at least the 24 a number is otherwise counted:
    /// `1e131071` is 131,072 digits, `1e-16383` 16,385 characters. Literals with an exponent are not
    /// taken out for the literal-blind cache (the `e` ends the digit run), so their value may decide.
    static func numericTextBytes(_ literal: String) -> Double {
        let lower = Array(literal.lowercased().utf8)
        guard let e = lower.firstIndex(of: UInt8(ascii: "e")),
              let exponent = Double(String(decoding: lower[(e + 1)...], as: UTF8.self)) else { return max(24, Double(lower.count)) }
        // numeric's text has at most 131,072 digits before the point and 16,383 after.
        return max(24, min(abs(exponent), 147_456) + Double(e) + 2)
    }

    /// Where in the tree each row source the query makes stands (a subquery, WITH query or function
    /// in FROM, a table function), or nil where it cannot be read.
    mutating func madeRowSources() -> [Range<Int>?] {
        if let known = madeRowSourcesCache { return known }
        var ranges: [Range<Int>?] = []
        for needle: StaticString in ["{\"RangeSubselect\":", "{\"CommonTableExpr\":", "{\"RangeFunction\":", "{\"RangeTableFunc\":"] {
            tree.forEachOccurrence(of: needle) { offset in
                var probe = ParseTreeCursor(tree)
                probe.offset = offset
                ranges.append((try? probe.skipValue()) != nil ? offset..<probe.offset : nil)
            }
        }
        madeRowSourcesCache = ranges
        return ranges
    }

    /// The bytes the string constants of the rows the query makes state (subqueries, WITH queries,
    /// functions in FROM): a column of them may carry any of these, or any concatenation of them.
    /// Read once per query; nested row sources are inside their parent's range and not counted twice.
    var madeRowsLiteralBytes: Double {
        mutating get {
            if let known = madeRowsLiteralCache { return known }
            var ranges = madeRowSources().map { $0 ?? 0..<tree.count }
            ranges.sort { $0.lowerBound < $1.lowerBound }
            var bytes = 0.0
            var covered = 0
            for range in ranges where range.lowerBound >= covered {
                bytes += literalBytes(range)
                covered = range.upperBound
            }
            madeRowsLiteralCache = bytes
            return bytes
        }
    }

    /// What a parameter may hold: the client sends it with Bind, in a message of at most
    /// `max_message_bytes` (1 MiB by default). `string_agg($1::text, '')` over 900 rows, bound to a
    /// 1 MB value, took a backend 1.7 GB (seventeenth red team).
    static let parameterBytes = Double(1 << 20)

    /// Types of a few bytes each: a parameter cast to one of them (or to an array of them,
    /// `unnest($1::int[])`) carries no text an aggregate could keep large.
    fileprivate static let fixedSizeTypes: Set<String> = ["int2", "int4", "int8", "float4", "float8", "bool", "date", "time",
                                                      "timestamp", "timestamptz", "uuid", "oid", "smallint", "integer", "bigint"]

    /// Whether a parameter in `range` may carry text into a value: one not cast straight to a
    /// fixed-size type, or (`arrays`) to an array of one (a 1 MB `$1::int[]` kept by array_agg over
    /// 100 rows took a backend 429 MB, while `unnest($1::int[])` in FROM makes rows of a few bytes),
    /// and not only compared or filtered with (`CASE WHEN status = $1 …`, a WHERE, a FILTER, a
    /// delimiter's length is its own): those make no part of the value an aggregate keeps.
    /// With `throughSubLinks`, the rows of every subquery reach too (what a hashed IN keeps), not
    /// only those of a scalar or ARRAY one.
    func reachingParameters(_ range: Range<Int>, arrays: Bool, throughSubLinks: Bool = false) -> Set<Int> {
        let node = UnsafeBufferPointer(rebasing: tree[range])
        guard node.contains("{\"ParamRef\":") else { return [] }
        var cursor = ParseTreeCursor(node)
        var found: Set<Int> = []
        let walk = ParameterWalk(arrays: arrays, throughSubLinks: throughSubLinks)
        guard (try? walk.reaches(&cursor, reaches: true, depth: 0, into: &found)) != nil else { return [Self.unknownParameter] }
        return found
    }

    /// Rows PostgreSQL 15 keeps whole in memory and never spills, besides an aggregate's: those of
    /// ARRAY(subquery), of a hashed subquery under IN, ANY, ALL or NOT IN, of INTERSECT and EXCEPT,
    /// and the union of WITH RECURSIVE. A parameter that reaches the values of such rows, or of any
    /// row source the query makes (they feed one another), is held to `boundParameterBytes` at each
    /// Bind, as for aggregates: `ARRAY(SELECT $1::text FROM generate_series(1, 300))` with a 1 MB
    /// value took 608 MB, `NOT IN (SELECT $1::text || g …)` and EXCEPT 320 MB (eighteenth red team).
    mutating func holdParametersOfKeptRows() {
        guard tree.contains("{\"ParamRef\":") else { return }
        var kept: [Range<Int>?] = []
        func nodes(_ needle: StaticString, _ keeps: (inout ParseTreeCursor) throws -> Range<Int>?) {
            tree.forEachOccurrence(of: needle) { offset in
                var probe = ParseTreeCursor(tree)
                probe.offset = offset
                do {
                    if let range = try keeps(&probe) { kept.append(range) }
                } catch {
                    kept.append(nil)
                }
            }
        }
        // `{"SubLink":{"subLinkType":…,"subselect":{…},…}}`: the subquery's rows.
        nodes("{\"SubLink\":") { probe in
            var type = "", subselect: Range<Int>?
            try probe.forEachKey { probe, _ in
                try probe.forEachKey { probe, key in
                    switch key {
                    case "subLinkType": type = try probe.string()
                    case "subselect":
                        let start = probe.offset
                        try probe.skipValue()
                        subselect = start..<probe.offset
                    default: try probe.skipValue()
                    }
                }
            }
            return ["ARRAY_SUBLINK", "ANY_SUBLINK", "ALL_SUBLINK"].contains(type) ? subselect : nil
        }
        // A set operation's node, both its sides: its `op` comes last.
        nodes("{\"SelectStmt\":") { probe in
            let start = probe.offset
            var operation = ""
            try probe.forEachKey { probe, _ in
                try probe.forEachKey { probe, key in
                    if case "op" = key { operation = try probe.string() } else { try probe.skipValue() }
                }
            }
            return operation == "SETOP_INTERSECT" || operation == "SETOP_EXCEPT" ? start..<probe.offset : nil
        }
        // WITH RECURSIVE's queries (`"withClause":{…,"recursive":true}`, no node of its own) and the
        // rows of a join that the query makes (a hash join of one key cannot spill: 1,000 rows of a
        // 1 MB parameter took 984 MB, eighteenth red team, second pass) are among the row sources
        // below.
        let keepsMadeRows = tree.contains("\"recursive\":true") || joinsMadeRows
        guard !kept.isEmpty || keepsMadeRows else { return }
        var parameters: Set<Int> = []
        for range in kept + madeRowSources() {
            if let range, Self.unnestsOneParameter(UnsafeBufferPointer(rebasing: tree[range])) || Self.makesOneRow(UnsafeBufferPointer(rebasing: tree[range])) { continue }
            parameters.formUnion(range.map { reachingParameters($0, arrays: true, throughSubLinks: true) } ?? [Self.unknownParameter])
        }
        if parameters.contains(Self.unknownParameter) {
            // Not followed: every parameter of the text.
            parameters.formUnion(Self.parameterNumbers(in: tree))
        }
        analysis.boundParameters.formUnion(parameters)
    }

    /// Whether the query joins rows it makes with other rows: a JOIN, or two FROM items of one
    /// query, where one is a subquery, WITH query or function (read once per query).
    var joinsMadeRows: Bool {
        mutating get {
            if let known = joinsMadeRowsCache { return known }
            var joins = false
            if queryMakesRows {
                joins = tree.contains("{\"JoinExpr\":")
                if !joins {
                    tree.forEachOccurrence(of: "\"fromClause\":[") { offset in
                        guard !joins else { return }
                        var probe = ParseTreeCursor(tree)
                        probe.offset = offset + "\"fromClause\":".utf8.count
                        var items = 0
                        guard (try? probe.expect(UInt8(ascii: "["))) != nil else { joins = true; return }
                        while (try? probe.nextElement()) == true, items < 2 {
                            items += 1
                            guard (try? probe.skipValue()) != nil else { joins = true; return }
                        }
                        if items >= 2 { joins = true }
                    }
                }
            }
            joinsMadeRowsCache = joins
            return joins
        }
    }

    /// Whether a row source, or a subquery's rows, are only `unnest($n)` of one parameter with no
    /// row source beside it (`JOIN unnest($1::text[]) u(sku)`, `IN (SELECT unnest($1::text[]))`):
    /// each element once, so they hold what the Bind holds, no more.
    static func unnestsOneParameter(_ node: UnsafeBufferPointer<UInt8>) -> Bool {
        guard !node.contains("\"fromClause\":"), node.contains("{\"FuncCall\":{\"funcname\":[{\"String\":{\"sval\":\"unnest\"}}]") else { return false }
        var calls = 0, parameters = 0, plain = true
        node.forEachOccurrence(of: "{\"") { offset in
            let name = offset + 2
            guard plain, name < node.count, node[name] >= UInt8(ascii: "A"), node[name] <= UInt8(ascii: "Z") else { return }
            let rest = UnsafeBufferPointer(rebasing: node[name...])
            if rest.starts(with: "FuncCall\"".utf8) { calls += 1 }
            else if rest.starts(with: "ParamRef\"".utf8) { parameters += 1 }
            else if !["RangeFunction\"", "List\"", "TypeCast\"", "String\"", "Integer\"", "SelectStmt\"", "ResTarget\""].contains(where: { rest.starts(with: $0.utf8) }) {
                plain = false
            }
        }
        return plain && calls == 1 && parameters == 1
    }

    /// Whether a row source or subquery makes one row of plain values (`(SELECT $1::text AS q) s`:
    /// no FROM, no set operation, no call that could return a set): one row is all it holds.
    static func makesOneRow(_ node: UnsafeBufferPointer<UInt8>) -> Bool {
        guard node.starts(with: "{\"RangeSubselect\":".utf8) || node.starts(with: "{\"SelectStmt\":".utf8) else { return false }
        // Field names with their colon: a string's value in the tree is never followed by one.
        return !node.contains("\"fromClause\":") && !node.contains("\"valuesLists\":") && !node.contains("{\"FuncCall\":")
            && !node.contains("\"op\":\"SETOP_UNION\"") && !node.contains("\"op\":\"SETOP_INTERSECT\"") && !node.contains("\"op\":\"SETOP_EXCEPT\"")
            && !node.contains("{\"SubLink\":")
    }

    /// The number of each parameter reference in `node`, in order (`unknownParameter` where one
    /// cannot be read).
    static func parameterNumbers(in node: UnsafeBufferPointer<UInt8>) -> [Int] {
        var numbers: [Int] = []
        node.forEachOccurrence(of: "{\"ParamRef\":") { offset in
            var probe = ParseTreeCursor(node)
            probe.offset = offset
            var number = unknownParameter
            _ = try? probe.forEachKey { probe, _ in
                try probe.forEachKey { probe, key in
                    if case "number" = key { number = try probe.integer() } else { try probe.skipValue() }
                }
            }
            numbers.append(number)
        }
        return numbers
    }

    /// Counts the references of each parameter the text makes more than once (`Analysis.repeatedParameters`).
    mutating func countParameterReferences() {
        guard tree.contains("{\"ParamRef\":") else { return }
        var counts: [Int: Int] = [:]
        for number in Self.parameterNumbers(in: tree) { counts[number, default: 0] += 1 }
        // And the copies column references stand for; inputs folded together (`…`) may be any.
        let folded = Int(min(copies.referencedParameters["…"] ?? 0, 1e9))
        for number in counts.keys {
            let copied = Int(min(copies.referencedParameters["$\(number)"] ?? 0, 1e9))
            counts[number, default: 0] += copied + folded
        }
        analysis.repeatedParameters = counts.filter { $0.value > 1 }
    }

    /// The names a row source the query makes is read by: its alias or WITH name, and the column
    /// names its alias gives; nil where any qualifier may stand for it (a WITH query, which FROM
    /// may read under another alias, a source without a name of its own, or one not read).
    struct SourceNames {
        var names: Set<String>
        var columnNames: Set<String>?
    }

    static func sourceNames(_ node: UnsafeBufferPointer<UInt8>) -> SourceNames? {
        var names: Set<String> = []
        var columnNames: Set<String>?
        var probe = ParseTreeCursor(node)
        let read: ()? = try? probe.forEachKey { probe, _ in
            try probe.forEachKey { probe, key in
                switch key {
                case "ctename": names.insert(try probe.string())
                case "alias":
                    try probe.forEachKey { probe, key in
                        switch key {
                        case "aliasname": names.insert(try probe.string())
                        case "colnames": columnNames = Set(try Analyzer.stringList(&probe))
                        default: try probe.skipValue()
                        }
                    }
                default: try probe.skipValue()
                }
            }
        }
        guard read != nil, !names.isEmpty, !node.starts(with: "{\"CommonTableExpr\":".utf8) else { return nil }
        return SourceNames(names: names, columnNames: columnNames)
    }

    /// Whether columns written as `columns` may read a row source named `source` (nil: any): one
    /// qualified by its name or alias, or an unqualified one (which may be any source's).
    /// `json_agg(p) FROM products p JOIN unnest($1::text[]) u(sku) ON …` keeps no value of `u`.
    static func mayRead(_ columns: [[String?]], from source: SourceNames?) -> Bool {
        guard let source else { return true }
        // A one-name column is the source's column, or the whole row of one named so; it is this
        // source's unless the source names its columns and it is none of them.
        return columns.contains { fields in
            guard let first = fields.first.flatMap({ $0 }) else { return true }
            if source.names.contains(first) { return true }
            return fields.count == 1 && !(source.columnNames.map { !$0.contains(first) } ?? false)
        }
    }

    /// The aliases of joins (`(… CROSS JOIN …) j`), each of which covers the sources joined under it.
    func joinAliases() -> Set<String> {
        var aliases: Set<String> = []
        tree.forEachOccurrence(of: "{\"JoinExpr\":") { offset in
            var probe = ParseTreeCursor(tree)
            probe.offset = offset
            _ = try? probe.forEachKey { probe, _ in
                try probe.forEachKey { probe, key in
                    guard case "alias" = key else { return try probe.skipValue() }
                    try probe.forEachKey { probe, key in
                        if case "aliasname" = key { aliases.insert(try probe.string()) } else { try probe.skipValue() }
                    }
                }
            }
        }
        return aliases
    }

    /// Stands for parameters Palisade could not follow.
    static let unknownParameter = 0

    /// What the values of the parameters an accumulating aggregate keeps may take together, checked
    /// at each Bind (`Decision.boundParameters`): a delimiter, a json key, a label.
    public static let boundParameterBytes = 256.0

    /// Fields whose values decide which rows or whether, not what a value holds.
    fileprivate static let choosingFields: Set<String> = ["whereClause", "havingClause", "quals", "agg_filter", "limitCount", "limitOffset",
                                                      "sortClause", "groupClause", "distinctClause", "over", "agg_order", "testexpr", "expr"]
    /// Functions whose result is a number or a truth, whatever their arguments.
    fileprivate static let measuringFunctions: Set<String> = ["length", "char_length", "character_length", "octet_length", "bit_length",
                                                          "count", "strpos", "position", "cardinality", "array_length"]
    fileprivate static let comparisons: Set<String> = ["=", "<>", "!=", "<", ">", "<=", ">="]

    /// Walks the value at `cursor`: whether a parameter reaches what it makes, with `reaches` telling
    /// whether this value itself does.
    private struct ParameterWalk {
    var arrays: Bool
    var throughSubLinks: Bool

    func reaches(_ cursor: inout ParseTreeCursor, reaches: Bool, depth: Int, into found: inout Set<Int>) throws {
        guard depth < 400 else { throw ParseTreeCursor.Malformed() }
        switch try cursor.peek() {
        case UInt8(ascii: "["):
            try cursor.expect(UInt8(ascii: "["))
            while try cursor.nextElement() { try self.reaches(&cursor, reaches: reaches, depth: depth + 1, into: &found) }
            return
        case UInt8(ascii: "{"):
            break
        default:
            try cursor.skipValue()
            return
        }
        var probe = cursor
        try probe.expect(UInt8(ascii: "{"))
        guard let first = try probe.nextKey() else { try cursor.skipValue(); return }
        let type = first.string
        guard let initial = type.utf8.first, initial >= UInt8(ascii: "A"), initial <= UInt8(ascii: "Z") else {
            // A plain object of fields.
            return try fields(&cursor, type: "", reaches: reaches, depth: depth, into: &found)
        }
        if type == "ParamRef" {
            var number = Analyzer.unknownParameter
            try cursor.forEachKey { cursor, _ in
                try cursor.forEachKey { cursor, key in
                    if case "number" = key { number = try cursor.integer() } else { try cursor.skipValue() }
                }
            }
            if reaches { found.insert(number) }
            return
        }
        try cursor.expect(UInt8(ascii: "{"))
        _ = try cursor.nextKey()
        var valueReaches = reaches
        if type == "BoolExpr" || type == "NullTest" || type == "BooleanTest" { valueReaches = false }
        if type == "TypeCast", reaches {
            // The type comes after the argument: read it first.
            var typeProbe = cursor
            var typeName = ""
            var isArray = false
            try typeProbe.forEachKey { typeProbe, key in
                guard case "typeName" = key else { return try typeProbe.skipValue() }
                try typeProbe.forEachKey { typeProbe, key in
                    switch key {
                    case "names": typeName = try Analyzer.stringList(&typeProbe).last ?? ""
                    case "arrayBounds":
                        isArray = true
                        try typeProbe.skipValue()
                    default: try typeProbe.skipValue()
                    }
                }
            }
            if Analyzer.fixedSizeTypes.contains(typeName), !(isArray && arrays) { valueReaches = false }
        }
        try fields(&cursor, type: type, reaches: valueReaches, depth: depth, into: &found)
        guard try cursor.nextKey() == nil else { throw ParseTreeCursor.Malformed() }
    }

    private func fields(_ cursor: inout ParseTreeCursor, type: String, reaches: Bool, depth: Int, into found: inout Set<Int>) throws {
        var kind = "", operatorName = "", subLinkType = "", function = ""
        try cursor.forEachKey { cursor, key in
            let name = key.string
            var childReaches = reaches && !Analyzer.choosingFields.contains(name)
            switch (type, name) {
            case ("A_Expr", "kind"): kind = try cursor.string(); return
            case ("A_Expr", "name"): operatorName = try Analyzer.stringList(&cursor).last ?? ""; return
            case ("A_Expr", _):
                let comparing = ["AEXPR_IN", "AEXPR_LIKE", "AEXPR_ILIKE", "AEXPR_SIMILAR", "AEXPR_BETWEEN", "AEXPR_NOT_BETWEEN",
                                 "AEXPR_BETWEEN_SYM", "AEXPR_NOT_BETWEEN_SYM", "AEXPR_DISTINCT", "AEXPR_NOT_DISTINCT",
                                 "AEXPR_OP_ANY", "AEXPR_OP_ALL"].contains(kind) || (kind == "AEXPR_OP" && Analyzer.comparisons.contains(operatorName))
                if comparing || (kind == "AEXPR_NULLIF" && name == "rexpr") { childReaches = false }
            case ("SubLink", "subLinkType"): subLinkType = try cursor.string(); return
            case ("SubLink", "subselect"):
                if !throughSubLinks, subLinkType != "EXPR_SUBLINK", subLinkType != "ARRAY_SUBLINK" { childReaches = false }
            case ("FuncCall", "funcname"): function = try Analyzer.stringList(&cursor).last ?? ""; return
            case ("FuncCall", "args"):
                if Analyzer.measuringFunctions.contains(function) { childReaches = false }
                // The elements of an array of a fixed-size type are of that type: `IN (SELECT
                // unnest($1::int[]))` keeps numbers.
                if function == "unnest", arrays {
                    return try ParameterWalk(arrays: false, throughSubLinks: throughSubLinks).reaches(&cursor, reaches: childReaches, depth: depth + 1, into: &found)
                }
            case ("CaseExpr", "arg"): childReaches = false
            default: break
            }
            try self.reaches(&cursor, reaches: childReaches, depth: depth + 1, into: &found)
        }
    }
    }

    /// Refuses an accumulating aggregate whose every input row the text pads large (the fifth red
    /// team's follow-up: `array_agg('a'::char(262144)) FROM generate_series(1, 600)` took 325 MB).
    mutating func checkAccumulations() throws {
        // What the rows the query makes are read by, and the parameters they carry: worked out once
        // for all the aggregates (once each was quadratic: 5,000 aggregates over one subquery took
        // 9 s to decide, eighteenth red team).
        var made: (sources: [SourceNames?], joinAliases: Set<String>, parameters: Set<Int>)?
        for accumulation in accumulations {
            var bytes = accumulation.padded
            var parameters = accumulation.parameters
            if !accumulation.columns.isEmpty, queryMakesRows {
                // A column of rows the query makes may carry what their padding casts make (all the
                // query's: which rows make which is not worked out), and its parameters.
                bytes += analysis.madeBytes - analysis.allocatedBytes
                if made == nil {
                    let ranges = madeRowSources()
                    var carried: Set<Int> = []
                    for range in ranges { carried.formUnion(range.map { reachingParameters($0, arrays: false) } ?? [Self.unknownParameter]) }
                    made = (ranges.map { $0.flatMap { Self.sourceNames(UnsafeBufferPointer(rebasing: tree[$0])) } }, joinAliases(), carried)
                }
                // Rows the query makes feed one another (a LATERAL subquery renames a column, a join's
                // alias covers several): reading any of them reads all their parameters (seventeenth
                // red team, third pass).
                let readsJoin = accumulation.columns.contains { $0.first.flatMap { $0 }.map(made!.joinAliases.contains) ?? false }
                if readsJoin || made!.sources.contains(where: { Self.mayRead(accumulation.columns, from: $0) }) {
                    parameters.formUnion(made!.parameters)
                }
            }
            if !parameters.isEmpty {
                // The values come with each Bind: held to `boundParameterBytes` together there, as
                // many here; a parameter Palisade cannot follow counts as a whole message.
                bytes += parameters.contains(Self.unknownParameter) ? Self.parameterBytes : Self.boundParameterBytes
                analysis.boundParameters.formUnion(parameters)
            }
            // Several aggregates keep their rows side by side: what the text adds to each adds up
            // (12 of 61 MB each took 1.4 GB, eleventh round).
            analysis.accumulatedBytesPerRow += bytes + accumulation.converted
            try refuseAccumulatedRow(bytes, of: "\(accumulation.name)()", offset: accumulation.offset)
        }
    }

    func refuseAccumulatedRow(_ bytes: Double, of what: String, offset: Int?) throws {
        guard bytes > Self.maxAccumulatedBytesPerRow else { return }
        let perRow = Int(Self.maxAccumulatedBytesPerRow)
        throw Denial(rule: .argumentLimit,
                     message: "\(what) keeps every input row's value, and the query's text makes each up to \(Self.describe(bytes)) bytes: over \(perRow) bytes a row, the rows Palisade cannot bound multiply it past this policy's limit of \(shared.policy.maxFunctionResultBytes) bytes",
                     hint: "Aggregate the table's own columns with short delimiters and labels (at most \(perRow) bytes of text, padding or repeat() a row); build long text once, outside the aggregate, or return the rows and join them in the client.",
                     offset: offset, statementType: analysis.statementType)
    }
}

extension Analyzer {
    /// What the text adds to the rows that aggregates and ARRAY(subquery) keep, once the copy reader
    /// has sized their values too (copies of a value, `quote_literal` nested, `round(x, 16383)`:
    /// text the walk above counts as a few bytes): each row at most 1 KiB, and over the rows the
    /// text's own set-returning calls make, all of it at most 64 × max_function_result_bytes. Rows
    /// the text does not make are the planner's to count (`CostBudget.accumulation`).
    mutating func checkAccumulatedRows() throws {
        guard analysis.isQuery else { return }
        try refuseAccumulatedRow(copies.largestAccumulatedRow, of: "an aggregate or ARRAY(…)", offset: nil)
        let bytes = analysis.accumulatedBytesPerRow + copies.accumulatedRowBytes
        analysis.accumulatedBytesPerRow = bytes
        analysis.gathersSubqueryRows = copies.gathersSubqueryRows
        let maxBytes = Self.maxAccumulatedBytes(shared.policy)
        try checkHashedSetOperation(within: maxBytes)
        guard bytes * analysis.textMadeRows > maxBytes else { return }
        throw Denial(rule: .argumentLimit,
                     message: "aggregates and ARRAY(…) keep every input row's value, and the query's text adds up to \(Self.describe(bytes)) bytes to each of the up to \(Self.describe(analysis.textMadeRows)) rows its set-returning calls, VALUES lists and WITH queries make (generate_series, regexp_split_to_table, unnest, …): \(Self.describe(bytes * analysis.textMadeRows)) bytes, over this policy's limit of \(Self.describe(maxBytes)) bytes (64 × max_function_result_bytes)",
                     hint: "Aggregate fewer generated rows, or the rows' own values with short delimiters and labels; build long text once, outside the aggregate.",
                     offset: nil, statementType: analysis.statementType)
    }
}

// MARK: - Recursive growth

/// What reaches the value of an expression in a recursive query's recursive term: the references
/// to the recursive query's own columns whose sizes add up in it, and those that reach a function
/// that multiplies a size (`repeat(s, 2)`, `replace(s, 'x', 'xx')`, `encode(…, 'hex')`, a cast to
/// text, which escapes).
struct GrowthReach {
    /// A column name, or nil for a column Palisade cannot name (a whole row, `x.*`, a subquery's).
    var additive: [String?] = []
    var multiplied: [String?] = []

    mutating func add(_ other: GrowthReach) {
        additive += other.additive
        multiplied += other.multiplied
    }

    /// Its references all reach a multiplying function.
    var multiplying: GrowthReach { GrowthReach(additive: [], multiplied: multiplied + additive) }
    /// Its value has a size of its own (a number, a boolean): only what multiplies stays.
    var sized: GrowthReach { GrowthReach(additive: [], multiplied: multiplied) }
}

struct GrowthReader {
    let cteName: String
    /// Names the recursive term gives the recursive query (its name, its aliases).
    let selfQualifiers: Set<String>
    /// Names of other relations in the recursive term (tables, other WITH queries).
    let otherQualifiers: Set<String>
    /// The recursive query's column names, and whether one of them Palisade cannot name.
    let columns: Set<String>
    let hasUnnamedColumn: Bool

    /// Deeper nesting than this is not read: it counts as multiplying (fail closed).
    static let deepest = 200

    /// Operators whose result has a size of its own whatever their operands' (numbers, booleans,
    /// dates): arithmetic grows a numeric by a digit or two a step, capped by numeric's own limit.
    static let sizedOperators: Set<String> = [
        "+", "-", "*", "/", "%", "^", "|/", "||/", "@", "=", "<>", "!=", "<", ">", "<=", ">=",
        "&", "|", "#", "~", "<<", ">>", "~~", "~~*", "!~~", "!~~*", "~*", "!~", "!~*", "@>", "<@", "&&", "?", "?|", "?&", "@@",
    ]

    /// Functions whose result has a size of its own, whatever their arguments' (lengths, hashes,
    /// numbers, dates, a format the text states).
    static let sizedFunctions: Set<String> = [
        "length", "char_length", "character_length", "octet_length", "bit_length", "cardinality", "array_length",
        "array_upper", "array_lower", "array_ndims", "array_position", "md5", "sha224", "sha256", "sha384", "sha512",
        "position", "strpos", "abs", "mod", "round", "trunc", "floor", "ceil", "ceiling", "sqrt", "cbrt", "sign",
        "power", "pow", "exp", "ln", "log", "log10", "div", "gcd", "lcm", "date_trunc", "date_part", "extract",
        "to_char", "to_date", "to_timestamp", "to_number", "age", "make_date", "make_time", "make_timestamp",
        "make_timestamptz", "make_interval", "date_bin", "justify_days", "justify_hours", "justify_interval",
        "jsonb_typeof", "json_typeof", "jsonb_array_length", "json_array_length", "hashtext", "ascii", "chr",
        "starts_with", "num_nonnulls", "num_nulls", "isfinite", "width_bucket", "pg_column_size", "now",
        "clock_timestamp", "statement_timestamp", "random", "count", "sum", "avg", "bool_and", "bool_or",
        "every", "int4", "int8", "float8", "numeric", "scale", "min_scale",
    ]

    /// Functions whose result is at most their arguments' sizes added up (a selection, a part, a
    /// concatenation).
    static let additiveFunctions: Set<String> = [
        "concat", "concat_ws", "substr", "substring", "left", "right", "btrim", "ltrim", "rtrim", "trim",
        "upper", "lower", "initcap", "reverse", "split_part", "array_append", "array_prepend", "array_cat",
        "array_remove", "array_replace", "string_to_array", "coalesce", "nullif", "greatest", "least",
        "jsonb_set", "jsonb_insert", "max", "min", "array_agg", "string_agg", "trim_array",
    ]

    /// Types to which a cast writes a value's text form: arrays, rows, bytea and json escape what
    /// they hold, so that each step may double it (`ARRAY[s]::text`). With a length (`varchar(100)`)
    /// the cast bounds it instead.
    static let textForms: Set<String> = ["text", "varchar", "bpchar", "json", "jsonb", "xml", "name", "char", "character", "citext"]

    func resolve(_ fields: [String?]) -> [String?] {
        switch fields.count {
        case 0: return []
        case 1:
            guard let name = fields[0] else { return [nil] }
            if selfQualifiers.contains(name) && !columns.contains(name) { return [nil] }
            if columns.contains(name) { return [name] }
            // A name that is not one of the recursive query's columns comes from another relation,
            // unless Palisade cannot name every column.
            return hasUnnamedColumn ? [nil] : []
        default:
            guard let qualifier = fields[fields.count - 2] else { return [nil] }
            if otherQualifiers.contains(qualifier) && !selfQualifiers.contains(qualifier) { return [] }
            if selfQualifiers.contains(qualifier), let name = fields[fields.count - 1], columns.contains(name) { return [name] }
            return [nil]
        }
    }

    /// Reads the wrapped node at the cursor (`{"Type":{…}}`) and what reaches its value.
    func reach(_ cursor: inout ParseTreeCursor, depth: Int) throws -> GrowthReach {
        guard depth < Self.deepest else {
            try cursor.skipValue()
            return GrowthReach(additive: [], multiplied: [nil])
        }
        try cursor.expect(UInt8(ascii: "{"))
        guard let type = try cursor.nextKey() else { return GrowthReach() }
        var result = GrowthReach()
        switch type {
        case "ColumnRef":
            result.additive = resolve(try Analyzer.columnRefFields(&cursor))
        case "A_Const", "ParamRef", "SQLValueFunction", "SetToDefault":
            try cursor.skipValue()
        case "A_Expr":
            var kind = "", symbol = ""
            var left = GrowthReach(), right = GrowthReach()
            try cursor.forEachKey { cursor, key in
                switch key {
                case "kind": kind = try cursor.string()
                case "name": symbol = try Analyzer.stringList(&cursor).last ?? ""
                case "lexpr": left = try children(&cursor, depth: depth + 1)
                case "rexpr": right = try children(&cursor, depth: depth + 1)
                default: try cursor.skipValue()
                }
            }
            switch kind {
            case "AEXPR_OP" where Self.sizedOperators.contains(symbol):
                left.add(right)
                result = left.sized
            case "AEXPR_OP", "AEXPR_NULLIF":
                left.add(right)
                result = left
            default:
                // IN, LIKE, BETWEEN, ANY, DISTINCT and the like: a boolean.
                left.add(right)
                result = left.sized
            }
        case "BoolExpr", "NullTest", "BooleanTest":
            result = try children(&cursor, depth: depth + 1).sized
        case "FuncCall":
            var name = ""
            var arguments = GrowthReach()
            try cursor.forEachKey { cursor, key in
                switch key {
                case "funcname": name = try Analyzer.stringList(&cursor).last ?? ""
                case "args", "agg_order", "agg_filter", "over": arguments.add(try children(&cursor, depth: depth + 1))
                default: try cursor.skipValue()
                }
            }
            if Self.sizedFunctions.contains(name) {
                result = arguments.sized
            } else if Self.additiveFunctions.contains(name) {
                result = arguments
            } else {
                // repeat, lpad, rpad, format, replace, regexp_replace, encode, quote_literal, to_json,
                // array_to_string, translate, and any function Palisade does not know the size of.
                result = arguments.multiplying
            }
        case "TypeCast":
            var argument = GrowthReach()
            var textForm = false, bounded = false, isArray = false
            try cursor.forEachKey { cursor, key in
                switch key {
                case "arg": argument = try children(&cursor, depth: depth + 1)
                case "typeName":
                    try cursor.forEachKey { cursor, key in
                        switch key {
                        case "names": textForm = Self.textForms.contains(try Analyzer.stringList(&cursor).last ?? "")
                        case "typmods": bounded = true; try cursor.skipValue()
                        case "arrayBounds": isArray = true; try cursor.skipValue()
                        default: try cursor.skipValue()
                        }
                    }
                default: try cursor.skipValue()
                }
            }
            if bounded && !isArray {
                result = argument.sized
            } else if textForm || isArray {
                result = argument.multiplying
            } else {
                result = argument
            }
        case "CoalesceExpr", "MinMaxExpr":
            // One of the arguments: the one with the most references.
            try cursor.forEachKey { cursor, key in
                guard case "args" = key else { try cursor.skipValue(); return }
                try cursor.expect(UInt8(ascii: "["))
                while try cursor.nextElement() {
                    let each = try reach(&cursor, depth: depth + 1)
                    result.multiplied += each.multiplied
                    if each.additive.count > result.additive.count { result.additive = each.additive }
                }
            }
        case "CaseExpr":
            var conditions = GrowthReach()
            var branches: [GrowthReach] = []
            try cursor.forEachKey { cursor, key in
                switch key {
                case "arg": conditions.add(try children(&cursor, depth: depth + 1))
                case "defresult": branches.append(try children(&cursor, depth: depth + 1))
                case "args":
                    try cursor.expect(UInt8(ascii: "["))
                    while try cursor.nextElement() {
                        try cursor.expect(UInt8(ascii: "{"))
                        guard case "CaseWhen"? = try cursor.nextKey() else { throw ParseTreeCursor.Malformed() }
                        try cursor.forEachKey { cursor, key in
                            switch key {
                            case "expr": conditions.add(try children(&cursor, depth: depth + 1))
                            case "result": branches.append(try children(&cursor, depth: depth + 1))
                            default: try cursor.skipValue()
                            }
                        }
                        guard try cursor.nextKey() == nil else { throw ParseTreeCursor.Malformed() }
                    }
                default: try cursor.skipValue()
                }
            }
            result = conditions.sized
            for branch in branches {
                result.multiplied += branch.multiplied
                if branch.additive.count > result.additive.count { result.additive = branch.additive }
            }
        case "XmlExpr", "XmlSerialize":
            result = try children(&cursor, depth: depth + 1).multiplying
        default:
            // Row and array constructors, subscripts, COLLATE, sublinks and the like: the sizes of
            // what they hold add up.
            result = try children(&cursor, depth: depth + 1)
        }
        guard try cursor.nextKey() == nil else { throw ParseTreeCursor.Malformed() }
        return result
    }

    /// What reaches any value at the cursor: a wrapped node, a plain object (its fields' nodes), a
    /// list (its elements) or a scalar (nothing).
    func children(_ cursor: inout ParseTreeCursor, depth: Int) throws -> GrowthReach {
        switch try cursor.peek() {
        case UInt8(ascii: "{"):
            var probe = cursor
            try probe.expect(UInt8(ascii: "{"))
            if probe.consume(UInt8(ascii: "}")) { cursor = probe; return GrowthReach() }
            try probe.expect(UInt8(ascii: "\""))
            let first = try probe.peek()
            if first >= UInt8(ascii: "A"), first <= UInt8(ascii: "Z") { return try reach(&cursor, depth: depth) }
            var result = GrowthReach()
            try cursor.forEachKey { cursor, _ in result.add(try children(&cursor, depth: depth + 1)) }
            return result
        case UInt8(ascii: "["):
            var result = GrowthReach()
            try cursor.expect(UInt8(ascii: "["))
            while try cursor.nextElement() { result.add(try children(&cursor, depth: depth + 1)) }
            return result
        default:
            try cursor.skipValue()
            return GrowthReach()
        }
    }
}

extension Analyzer {
    /// A recursive query joined by UNION ALL keeps one step's rows at a time, but a step may build
    /// its values from the previous step's: `s || s`, `concat(s, s)`, `repeat(s, 2)`,
    /// `replace(s, 'x', 'xx')` double a text every step (2^n: 420 MB at 28 steps, follow-up to the
    /// fifth red team). A column of the recursive term may take the recursive query's own growing
    /// columns once, added to anything else (`path || '/' || c.name`, `path || ARRAY[c.id]`,
    /// `depth + 1`); twice, or through a function that multiplies a size, is refused. A column
    /// grows if its recursive term takes a growing column (worked out to a fixed point, so that an
    /// id that is a table's each step is not one). The cursor stands on the CTE's query (read ahead
    /// on a copy).
    func checkRecursiveGrowth(_ name: String, columnNames: [String]) throws {
        var probe = cursor
        var left: ParseTreeCursor?, right: ParseTreeCursor?
        var isUnion = false
        try probe.forEachKey { probe, type in
            guard case "SelectStmt" = type else { try probe.skipValue(); return }
            try probe.forEachKey { probe, key in
                switch key {
                case "op": isUnion = try probe.string() == "SETOP_UNION"
                case "larg": left = probe; try probe.skipValue()
                case "rarg": right = probe; try probe.skipValue()
                default: try probe.skipValue()
                }
            }
        }
        guard isUnion, let left, let right else { return }
        let rightStart = right.offset
        var rightEnd = right
        try rightEnd.skipValue()
        let rightRange = rightStart..<rightEnd.offset

        // The columns' names: the alias list, or the non-recursive term's (its leftmost SELECT).
        var columns: [String?] = columnNames
        if columns.isEmpty {
            var anchor = left
            if let targets = try Self.targetListCursors(of: left, branch: &anchor) {
                columns = try targets.map { try Self.outputName($0) }
            }
        }

        // The recursive term's relations: the recursive query under its names, and the others.
        var selfQualifiers: Set<String> = [name]
        var otherQualifiers: Set<String> = []
        let termNode = UnsafeBufferPointer(rebasing: tree[rightRange])
        try termNode.forEachOccurrence(of: "{\"RangeVar\":") { offset in
            var relation = ParseTreeCursor(termNode)
            relation.offset = offset
            var relname = "", alias: String?, qualified = false
            try relation.forEachKey { relation, _ in
                try relation.forEachKey { relation, key in
                    switch key {
                    case "relname": relname = try relation.string()
                    case "schemaname", "catalogname": qualified = true; try relation.skipValue()
                    case "alias":
                        try relation.forEachKey { relation, key in
                            if case "aliasname" = key { alias = try relation.string() } else { try relation.skipValue() }
                        }
                    default: try relation.skipValue()
                    }
                }
            }
            if relname == name && !qualified {
                selfQualifiers.insert(alias ?? relname)
            } else {
                otherQualifiers.insert(alias ?? relname)
            }
        }
        let reader = GrowthReader(cteName: name, selfQualifiers: selfQualifiers, otherQualifiers: otherQualifiers,
                                  columns: Set(columns.compactMap { $0 }), hasUnnamedColumn: columns.contains(nil))

        // The recursive term's own output columns, matched to the recursive query's by position.
        var branch = right
        var top: [GrowthReach] = []
        var topRanges: [Range<Int>] = []
        if let targets = try Self.targetListCursors(of: right, branch: &branch) {
            for var target in targets {
                let start = target.offset
                top.append(try reader.children(&target, depth: 0))
                topRanges.append(start..<target.offset)
            }
        }
        var growing = Set(columns.compactMap { $0 })
        let mapsByPosition = top.count == columns.count && !columns.contains(nil)
        if mapsByPosition {
            // The greatest fixed point, in one pass over the references: a column stops growing when
            // none of the columns it takes still grows (a worklist, so that a chain of 1,000 columns
            // each taking the next is not 1,000 passes).
            var pending = top.map { reach in (reach.additive + reach.multiplied).filter { $0.map(growing.contains) ?? true }.count }
            var takenBy: [String: [Int]] = [:]
            for (index, reach) in top.enumerated() {
                for case let name? in reach.additive + reach.multiplied where growing.contains(name) { takenBy[name, default: []].append(index) }
            }
            var settled = pending.indices.filter { pending[$0] == 0 }
            while let index = settled.popLast() {
                guard let column = columns[index], growing.remove(column) != nil else { continue }
                for taker in takenBy[column] ?? [] {
                    pending[taker] -= 1
                    if pending[taker] == 0 { settled.append(taker) }
                }
            }
        }
        func grows(_ reference: String?) -> Bool { !mapsByPosition || reference.map(growing.contains) ?? true }
        func deny(_ offset: Int?) -> Denial {
            Denial(rule: .recursiveGrowth,
                   message: "WITH RECURSIVE \(name): a column of the recursive term takes the query's own growing columns more than once, or through a function that multiplies their size (repeat, replace, format, encode, a cast to text, …), so every step may double a value (2^n bytes)",
                   hint: "Add to a growing column at most once a step, with a table's value or a constant (path || '/' || c.name, path || ARRAY[c.id], depth + 1); cast the non-recursive term's column to text instead of the recursive term's, or cast to varchar(n) to bound it.",
                   offset: offset, statementType: analysis.statementType)
        }
        for (reach, range) in zip(top, topRanges) {
            if reach.additive.filter(grows).count >= 2 || reach.multiplied.contains(where: grows) {
                throw deny(Self.location(in: tree, range))
            }
        }
        // Output columns of subqueries inside the recursive term, whose references Palisade does not
        // follow to the recursive query's columns: each counts as growing.
        var nextTop = 0
        try termNode.forEachOccurrence(of: "{\"ResTarget\":") { offset in
            let absolute = rightStart + offset
            // Occurrences come in order, and so do the top targets' ranges.
            while nextTop < topRanges.count, topRanges[nextTop].upperBound <= absolute { nextTop += 1 }
            guard nextTop == topRanges.count || !topRanges[nextTop].contains(absolute) else { return }
            var target = ParseTreeCursor(tree)
            target.offset = absolute
            let reach = try reader.children(&target, depth: 0)
            if reach.additive.count >= 2 || !reach.multiplied.isEmpty { throw deny(Self.location(in: tree, absolute..<target.offset)) }
        }
    }

    /// The target list of a SELECT body, or of the leftmost SELECT of a set operation, as cursors on
    /// its elements; `branch` is left on that SELECT. Nil for a VALUES list.
    static func targetListCursors(of select: ParseTreeCursor, branch: inout ParseTreeCursor) throws -> [ParseTreeCursor]? {
        // `larg` and `rarg` are SelectStmt bodies, without the node's wrapping.
        var probe = select
        var targets: [ParseTreeCursor]?
        var leftmost: ParseTreeCursor?
        try probe.forEachKey { probe, key in
            switch key {
            case "targetList":
                var list: [ParseTreeCursor] = []
                try probe.expect(UInt8(ascii: "["))
                while try probe.nextElement() {
                    list.append(probe)
                    try probe.skipValue()
                }
                targets = list
            case "larg": leftmost = probe; try probe.skipValue()
            default: try probe.skipValue()
            }
        }
        if let targets {
            branch = select
            return targets
        }
        guard let leftmost else { return nil }
        return try targetListCursors(of: leftmost, branch: &branch)
    }

    /// The name of an output column (`{"ResTarget":{…}}`): its alias, or its column's name; nil
    /// where PostgreSQL makes one up.
    static func outputName(_ target: ParseTreeCursor) throws -> String? {
        var probe = target
        var name: String?
        var columnName: String?
        try probe.forEachKey { probe, _ in
            try probe.forEachKey { probe, key in
                switch key {
                case "name": name = try probe.string()
                case "val":
                    guard probe.startsWith("{\"ColumnRef\":{\"fields\":[") else { try probe.skipValue(); return }
                    try probe.forEachKey { probe, _ in
                        try probe.forEachKey { probe, key in
                            guard case "fields" = key else { try probe.skipValue(); return }
                            try probe.expect(UInt8(ascii: "["))
                            while try probe.nextElement() {
                                if probe.startsWith("{\"String\":") {
                                    try probe.forEachKey { probe, _ in try probe.forEachKey { probe, _ in columnName = try probe.string() } }
                                } else {
                                    columnName = nil
                                    try probe.skipValue()
                                }
                            }
                        }
                    }
                default: try probe.skipValue()
                }
            }
        }
        return name ?? columnName
    }

    /// The first `location` in a range of the tree, for a denial's offset.
    static func location(in tree: UnsafeBufferPointer<UInt8>, _ range: Range<Int>) -> Int? {
        let node = UnsafeBufferPointer(rebasing: tree[range])
        let needle: StaticString = "\"location\":"
        // The first one only: the node's own comes before its children's.
        guard let base = node.baseAddress, let hit = palisade_memmem(base, node.count, needle.utf8Start, needle.utf8CodeUnitCount) else { return nil }
        var probe = ParseTreeCursor(node)
        probe.offset = UnsafePointer<UInt8>(hit.assumingMemoryBound(to: UInt8.self)) - base + needle.utf8CodeUnitCount
        return try? probe.integer()
    }
}
