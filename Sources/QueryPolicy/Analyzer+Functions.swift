import Encoding
/// Functions: name resolution, allowlists and argument limits.
extension Analyzer {
    mutating func functionCall() throws {
        var takesXML = false
        var polymorphic = false
        var accumulates: String?
        var accumulationOffset: Int?
        try object { analyzer, key in
            switch key {
            case "funcname":
                let name = try analyzer.nameList()
                if let last = name.last, Self.accumulatingAggregates.contains(last) {
                    accumulates = last
                    accumulationOffset = analyzer.remainingLocation()
                }
                try analyzer.checkFunction(name)
                takesXML = name.last == "xmlagg"
                // Built-in functions whose arguments share one type (anyelement, anycompatible).
                polymorphic = name.last.map { $0.hasPrefix("array_") || $0 == "width_bucket" } ?? false
            case "args":
                if takesXML { try analyzer.requireXMLArguments(of: "xmlagg") }
                let start = analyzer.cursor.offset
                let paddedBefore = analyzer.analysis.madeBytes - analyzer.analysis.allocatedBytes
                if polymorphic { try analyzer.unifiedExpressionList() } else { try analyzer.expressionList() }
                if let name = accumulates {
                    let range = start..<analyzer.cursor.offset
                    let node = UnsafeBufferPointer(rebasing: analyzer.tree[range])
                    let padded = analyzer.analysis.madeBytes - analyzer.analysis.allocatedBytes - paddedBefore + analyzer.numberLiteralBytes(range)
                    var columns: [[String?]] = []
                    node.forEachOccurrence(of: "{\"ColumnRef\":") { offset in
                        var reference = ParseTreeCursor(node)
                        reference.offset = offset
                        columns.append((try? Self.columnFields(&reference)) ?? [])
                    }
                    var accumulation = Accumulation(name: name, padded: padded, offset: accumulationOffset,
                                                    parameters: analyzer.reachingParameters(range, arrays: true), columns: columns)
                    if name == "range_agg" || Self.convertsElementsAtLength(node) { accumulation.converted = Self.convertedElementBytes }
                    analyzer.accumulations.append(accumulation)
                }
            case "agg_order": try analyzer.expressionList()
            case "agg_filter": try analyzer.expression()
            case "over": try analyzer.windowDefinition()
            case "agg_within_group", "agg_star", "agg_distinct", "func_variadic": _ = try analyzer.cursor.boolean()
            case "funcformat": try analyzer.cursor.skipString()
            case "location": _ = try analyzer.cursor.integer()
            default: throw analyzer.unsupportedField(key)
            }
        }
    }

    /// Resolves a function name as Postgres does and checks it; the cursor stands after `funcname`.
    mutating func checkFunction(_ name: [String]) throws {
        let baseName = name.last ?? ""
        let allowed: Bool
        switch name.count {
        case 1:
            // Unqualified names find pg_catalog first, then the search path.
            allowed = shared.policy.builtinFunctions.contains(baseName)
                || shared.policy.searchPath.contains { shared.policy.extraFunctions.contains("\($0).\(baseName)") }
        case 2:
            allowed = name[0] == "pg_catalog" ? shared.policy.builtinFunctions.contains(baseName) : shared.policy.extraFunctions.contains("\(name[0]).\(baseName)")
        default:
            allowed = false
        }
        let written = name.joined(separator: ".")
        if allowed, name.count == 1, let schema = shared.searchPathFunctions[baseName],
           !shared.policy.extraFunctions.contains("\(schema).\(baseName)") {
            throw Denial(rule: .functionNotAllowed,
                         message: "function \(baseName)() is also defined in schema \(schema), and PostgreSQL may call that one instead of the built-in",
                         hint: "Call pg_catalog.\(baseName)() to mean the built-in; \(schema).\(baseName) runs only if the policy allows it.",
                         offset: remainingLocation(), statementType: analysis.statementType)
        }
        // Loading a policy refuses lists that name a forbidden function, so allowed names are never forbidden.
        guard allowed else {
            if let reason = ForbiddenFunctions.reason(for: baseName) {
                throw Denial(rule: .forbiddenFunction, message: "function \(written)() is never allowed: \(reason)",
                             hint: "Remove the call to \(written); no policy admits it.",
                             offset: remainingLocation(), statementType: analysis.statementType)
            }
            throw Denial(rule: .functionNotAllowed, message: "function \(written)() is not on this policy's allowlist",
                         hint: "Use built-in functions for math, text, dates, aggregates, window functions, JSON, arrays and full-text search; other functions are denied.",
                         offset: remainingLocation(), statementType: analysis.statementType)
        }
        let isBuiltin = name.count == 1 || name[0] == "pg_catalog"
        if !isBuiltin || PG15Catalog.setReturningFunctions.contains(baseName) { analysis.mayExplode = true }
        if isBuiltin, let index = Self.regexArgument[baseName], case let arguments = try argumentCursors(), index < arguments.count {
            try checkRegexPattern(arguments[index], offset: remainingLocation())
        }
        if isBuiltin, baseName.hasPrefix("jsonb_path_"), case let arguments = try argumentCursors(), arguments.count >= 2 {
            try checkJSONPathPatterns(arguments[1], offset: remainingLocation())
        }
        if isBuiltin, let weight = PG15Catalog.sqlFunctionPlanningWeights[baseName] { planning.add(Double(weight) * expressionCopies) }
        if isBuiltin, Self.numericFoldFunctions.contains(baseName) { numericFolds += expressionCopies }
        if baseName == "current_setting" {
            let arguments = try argumentCursors()
            try checkSettingName(arguments.first.flatMap { constantValue($0)?.string }, offset: remainingLocation())
        }
        if isBuiltin {
            if let reason = statisticsReason(ofFunction: baseName) {
                throw Denial(rule: .statistics, message: "function \(written)() is not allowed with this profile: \(reason.why)",
                             hint: reason.hint, offset: remainingLocation(), statementType: analysis.statementType)
            }
            try checkArgumentLimits(baseName, offset: remainingLocation())
            if baseName != "generate_series", PG15Catalog.setReturningFunctions.contains(baseName) {
                // A split or a regexp's matches may make a row of each byte ('a,,,,' or an empty
                // match); an element of an array or a json takes two at least ('{1,2}', '[1,2]').
                let bytesPerRow = Self.rowPerByteFunctions.contains(baseName) ? 1.0 : 2
                let arguments = try argumentCursors()
                analysis.textMadeRows *= rowsFromText(arguments, bytesPerRow: bytesPerRow)
                // A path's subscript lists return each item once per subscript (1,500 elements
                // through 256 copies: 384,000 rows, which the planner took for 1,000).
                if baseName.hasPrefix("jsonb_path_query"), arguments.count >= 2 {
                    analysis.textMadeRows *= constantValue(arguments[1])?.string.map { JSONPathShape($0).fanOut } ?? Self.mostJSONPathFanOut
                }
            }
        }
        if baseName == "ts_rewrite", name.count == 1 || name[0] == "pg_catalog", try argumentCount() != 3 {
            throw Denial(rule: .forbiddenFunction, message: "function \(written)() is not allowed here: \(ForbiddenFunctions.queryRunningRewrite)",
                         hint: "Use ts_rewrite(query, target, substitute) with three tsquery values; no policy admits the form that runs a query.",
                         offset: remainingLocation(), statementType: analysis.statementType)
        }
        listFunction(written)
    }

    /// The number of arguments of the FuncCall the cursor stands in, after funcname (read ahead on a copy).
    func argumentCount() throws -> Int {
        try cursor.elementsAhead(in: "args")
    }

    /// current_setting may read the tenant claim and, where the policy says so, the reviewed
    /// harmless settings and the metadata list's settings; the name must be a literal. Settings are
    /// looked up without regard to case.
    func checkSettingName(_ setting: String?, offset: Int?) throws {
        let policy = shared.policy
        guard let name = setting?.asciiLowercased, readsSetting(name) else {
            let settings = (policy.allowsReviewedSettings ? Policy.reviewedSettings : []).union(policy.readableSettings)
            let readable = settings.isEmpty
                ? "only the tenant claim, current_setting('\(Policy.claimSetting)', true)"
                : "the tenant claim ('\(Policy.claimSetting)') and these settings: \(settings.sorted().joined(separator: ", "))"
            throw Denial(rule: .currentSetting,
                         message: "current_setting(\(setting.map { "'\($0)'" } ?? "…")) is not allowed: settings can hold secrets (a custom setting stored on a role or database is in every session)",
                         hint: "current_setting may read \(readable), named by a literal in a direct call.",
                         offset: offset, statementType: analysis.statementType)
        }
    }

    /// Whether current_setting (and so SHOW) may read the setting `name` (lowercase).
    func readsSetting(_ name: String) -> Bool {
        let policy = shared.policy
        return name == Policy.claimSetting || (policy.allowsReviewedSettings && Policy.reviewedSettings.contains(name))
            || policy.readableSettings.contains(name)
    }

    /// The argument that is a regular expression, of the functions that take one (`substring`'s
    /// second is one where it is text: `substring(s from 'a+')`, `substring(s similar … escape …)`).
    static let regexArgument: [String: Int] = [
        "regexp_match": 1, "regexp_matches": 1, "regexp_replace": 1, "regexp_split_to_array": 1, "regexp_split_to_table": 1,
        "regexp_count": 1, "regexp_instr": 1, "regexp_like": 1, "regexp_substr": 1, "substring": 1, "similar_to_escape": 0,
    ]

    /// The argument nodes of the FuncCall the cursor stands in, after funcname (read ahead on a copy).
    func argumentCursors() throws -> [ParseTreeCursor] {
        var probe = cursor
        var arguments: [ParseTreeCursor] = []
        while let key = try probe.nextKey() {
            guard case "args" = key else { try probe.skipValue(); continue }
            try probe.expect(UInt8(ascii: "["))
            while try probe.nextElement() {
                arguments.append(probe)
                try probe.skipValue()
            }
        }
        return arguments
    }

    /// Functions that allocate by an argument: where the text states the argument, the result
    /// must fit the policy's limits. Checked before the server would allocate (`repeat('x', 1e9)`
    /// is a gigabyte in the server before statement_timeout can end it).
    mutating func checkArgumentLimits(_ name: String, offset: Int?) throws {
        let policy = shared.policy
        func deny(_ message: String, _ hint: String) -> Denial {
            Denial(rule: .argumentLimit, message: message, hint: hint, offset: offset, statementType: analysis.statementType)
        }
        let bytesLimit = Double(policy.maxFunctionResultBytes)
        /// Counts what this call may make: over the limit alone it is refused with what the call
        /// does; within it, it counts toward what the query's allocating calls make together. (The
        /// total was checked first once, which hid every call's own message behind it.)
        func allocateCall(_ bytes: Double, _ message: @autoclosure () -> String, _ hint: @autoclosure () -> String) throws {
            if bytes > bytesLimit { throw deny(message(), hint()) }
            try allocate(bytes)
        }
        /// A result in which every position of a `source`-byte input may become `each` bytes.
        func allocateProduct(of source: Double, by each: Double, _ message: (Double) -> String, _ hint: @autoclosure () -> String) throws {
            let bytes = (source + 1) * max(1, each)
            try allocateCall(bytes, message(bytes), hint())
        }
        let rowsLimit = Double(policy.maxGeneratedRows)
        switch name {
        case "array_to_string", "concat_ws":
            // The separator (and array_to_string's null string) goes between every two elements,
            // as many as the array or VARIADIC list holds: a 1 MB separator over 300 elements took
            // 595 MB (eighteenth red team, second pass). A parameter there is held at Bind.
            let arguments = try argumentCursors()
            for argument in name == "concat_ws" ? Array(arguments.prefix(1)) : Array(arguments.dropFirst()) {
                _ = multipliedSizeBound(argument)
            }
        case "repeat":
            let arguments = try argumentCursors()
            guard arguments.count == 2 else { return }
            guard let count = upperBound(arguments[1]) else { throw unbounded(name, "count", "repeat('*', least(n, 100))") }
            let bytes = count * multipliedSizeBound(arguments[0])
            try allocateCall(bytes,
                             "repeat() could make \(Self.describe(bytes)) bytes, over this policy's limit of \(policy.maxFunctionResultBytes) bytes",
                             "Repeat fewer times; results over \(policy.maxFunctionResultBytes) bytes are refused before they reach the server.")
        case "lpad", "rpad":
            let arguments = try argumentCursors()
            guard arguments.count >= 2 else { return }
            guard let length = upperBound(arguments[1]) else { throw unbounded(name, "length", "\(name)(name, least(n, 100))") }
            // Characters, up to 4 bytes each whatever the text (`lpad('', n, '😀')`).
            let bytes = length * ConstantExpression.maxBytesPerCharacter
            try allocateCall(bytes,
                             "\(name)() would make a text of \(Self.describe(length)) characters, up to \(Self.describe(bytes)) bytes, over this policy's limit of \(policy.maxFunctionResultBytes) bytes",
                             "Pad to a shorter length; results over \(policy.maxFunctionResultBytes) bytes are refused before they reach the server.")
        case "array_fill":
            let arguments = try argumentCursors()
            guard arguments.count >= 2 else { return }
            guard let dimensions = constantValue(arguments[1])?.numbers else {
                throw unbounded(name, "dimensions", "array_fill(0, ARRAY[10, 10]), with the dimensions written as numbers")
            }
            guard !dimensions.isEmpty else { return }
            let elements = dimensions.reduce(1.0) { $0 * max($1, 0) }
            if elements > rowsLimit {
                throw deny("array_fill() would make an array of \(Self.describe(elements)) elements, over this policy's limit of \(policy.maxGeneratedRows)",
                           "Fill a smaller array; at most \(policy.maxGeneratedRows) elements are admitted.")
            }
            // Each element is a copy of the value: a text's bytes count once per element (numbers are
            // bounded by the element count above, and take 8 bytes each).
            if let number = constantValue(arguments[0])?.number, number.isFinite, abs(number) < 1e21 {
                analysis.madeBytes += elements * 8
                return
            }  // a number of 1e21 and more is written out in full as text: sized below (`1e131071`)
            let elementBytes = sizeBound(arguments[0])
            try allocateCall(elements * elementBytes,
                             "array_fill() would make \(Self.describe(elements)) copies of a \(Self.describe(elementBytes))-byte value, over this policy's limit of \(policy.maxFunctionResultBytes) bytes",
                             "Fill a smaller array or with a shorter value; results over \(policy.maxFunctionResultBytes) bytes are refused before they reach the server.")
        case "generate_series":
            let arguments = try argumentCursors()
            guard arguments.count >= 2 else { return }
            guard let steps = seriesLength(arguments) else {
                // A bound or step the text states but Palisade cannot read ('PT1S', 'Jan 1 2000', parts
                // of both signs) is refused; one the server computes (now(), a column) stays the server's.
                let computedStep = arguments.count >= 3 && constantValue(arguments[2]) == nil && isClosed(arguments[2])
                if computedStep || arguments.prefix(3).contains(where: { statesUnreadableTime($0) }) {
                    throw deny("generate_series() states a bound or step Palisade cannot read, so it cannot show that the rows stay within this policy's limit of \(policy.maxGeneratedRows)",
                               "Write timestamps as '2024-01-31 12:00', steps as '1 hour' or '90 minutes' (parts of one sign), or use numbers.")
                }
                // Bounds a clock gives, with constant intervals around it ('the last 30 days'), span
                // what the text says; others' rows are the server's to count, and the planner
                // guesses 1,000.
                if let steps = clockSeriesLength(arguments) {
                    guard steps <= rowsLimit else {
                        throw deny("generate_series() would make \(Self.describe(steps)) rows, over this policy's limit of \(policy.maxGeneratedRows)",
                                   "Generate fewer rows (narrower bounds or a larger step); at most \(policy.maxGeneratedRows) are admitted.")
                    }
                    analysis.textMadeRows *= max(1, steps)
                    return
                }
                unboundedRowSources += 1
                return
            }
            guard steps > rowsLimit else {
                analysis.textMadeRows *= max(1, steps)
                return
            }
            throw deny("generate_series() would make \(Self.describe(steps)) rows, over this policy's limit of \(policy.maxGeneratedRows)",
                       "Generate fewer rows (narrower bounds or a larger step); at most \(policy.maxGeneratedRows) are admitted.")
        case "format":
            let arguments = try argumentCursors()
            guard let first = arguments.first else { return }
            guard let format = constantValue(first)?.string else {
                if isClosed(first) { throw unevaluated(name, "format string", "Write the format string out as one literal") }
                return
            }
            let (widest, _, conversions) = Self.formatShape(format)
            let widthArguments = Self.formatWidthArguments(format)
            var width = widest
            // Every conversion may insert the largest argument (`%1$s` many times inserts one many times).
            var largest = 0.0
            for (offset, argument) in arguments.dropFirst().enumerated() {
                // `%*s` takes its width from an argument (`format('%-*s', 12, category)`: the 12).
                if widthArguments.contains(offset + 1) {
                    if let number = upperBound(argument) {
                        width = max(width, abs(number))
                    } else if constantValue(argument) == nil {
                        throw unbounded(name, "width (%*s takes it from an argument, and this one", "format('%*s', least(w, 100), value)")
                    }
                }
                largest = max(largest, sizeBound(argument))
            }
            if width > bytesLimit {
                throw deny("format() would pad a value to \(Self.describe(width)) characters, over this policy's limit of \(policy.maxFunctionResultBytes) bytes",
                           "Use a narrower width; results over \(policy.maxFunctionResultBytes) bytes are refused before they reach the server.")
            }
            let bytes = Double(format.utf8.count) + Double(conversions) * max(width * ConstantExpression.maxBytesPerCharacter, largest)
            try allocateCall(bytes,
                             "format() could make \(Self.describe(bytes)) bytes (\(conversions) conversions of up to \(Self.describe(max(width, largest))) bytes each), over this policy's limit of \(policy.maxFunctionResultBytes) bytes",
                             "Use fewer conversions or shorter values; results over \(policy.maxFunctionResultBytes) bytes are refused before they reach the server.")
        case "replace", "regexp_replace":
            let arguments = try argumentCursors()
            guard arguments.count >= 3 else { return }
            let source = multipliedSizeBound(arguments[0]), replacement = multipliedSizeBound(arguments[2])
            // Every match, down to an empty one at each position, may become the replacement (which
            // `\&` can fill with the match itself).
            try allocateProduct(of: source, by: replacement,
                                { "\(name)() could make \(Self.describe($0)) bytes (a \(Self.describe(source))-byte text whose every match may become the \(Self.describe(replacement))-byte replacement), over this policy's limit of \(policy.maxFunctionResultBytes) bytes" },
                                "Replace within a shorter text or with a shorter replacement; results over \(policy.maxFunctionResultBytes) bytes are refused before they reach the server.")
        case "jsonb_path_query", "jsonb_path_query_array", "jsonb_path_query_first", "jsonb_path_exists", "jsonb_path_match",
             "jsonb_path_query_tz", "jsonb_path_query_array_tz", "jsonb_path_query_first_tz", "jsonb_path_exists_tz", "jsonb_path_match_tz",
             "jsonb_pretty":
            let arguments = try argumentCursors()
            guard let target = arguments.first else { return }
            if name == "jsonb_pretty" {
                try checkSquareOfJSON("\(name)()", target: target, path: nil, offset: offset)
            } else if arguments.count >= 2 {
                try checkSquareOfJSON("\(name)()", target: target, path: arguments[1], variables: arguments.count >= 3 ? arguments[2] : nil,
                                      offset: offset)
            }
        case "ts_rewrite":
            // ts_rewrite(query, target, substitute) copies the whole substitute at every match: n × m
            // nodes (2,000 × 2,000 took 1.33 GB, ninth red team). The planner folds it when its
            // arguments are constants, so EXPLAIN would run it too.
            let arguments = try argumentCursors()
            guard arguments.count == 3 else { return }
            let query = multipliedSizeBound(arguments[0]), substitute = multipliedSizeBound(arguments[2])
            try allocateProduct(of: query, by: substitute,
                                { "ts_rewrite() could make \(Self.describe($0)) bytes (a \(Self.describe(query))-byte query whose every node may become the \(Self.describe(substitute))-byte substitute), over this policy's limit of \(policy.maxFunctionResultBytes) bytes" },
                                "Rewrite a shorter query or with a shorter substitute; results over \(policy.maxFunctionResultBytes) bytes are refused before they reach the server.")
        case "ts_headline":
            // Every match is wrapped in StartSel and StopSel, and every fragment is followed by
            // FragmentDelimiter, all from the options: 802 KB of text asked for about 800 MB (ninth
            // red team). ts_headline([config,] document, query [, options]): the document is one of
            // the first two, the options the last.
            let arguments = try argumentCursors()
            guard arguments.count >= 3 else { return }
            let document = max(sizeBound(arguments[0]), sizeBound(arguments[1]))
            let options = headlineOptionsAreLast(arguments) ? sizeBound(arguments[arguments.count - 1]) : Self.defaultHeadlineMarkers
            try allocateProduct(of: document, by: options,
                                { "ts_headline() could make \(Self.describe($0)) bytes (a \(Self.describe(document))-byte document whose every word may be wrapped in the \(Self.describe(options))-byte options' markers), over this policy's limit of \(policy.maxFunctionResultBytes) bytes" },
                                "Highlight a shorter document or with shorter StartSel, StopSel and FragmentDelimiter; results over \(policy.maxFunctionResultBytes) bytes are refused before they reach the server.")
        case "bpchar", "bit":
            // The length coercions behind char(n) and bit(n), called by name: bpchar(x, n + 4, true),
            // bit(x, n), bit(x, n, true) pad as the casts do (10 MB a call, 625 MB in an array_agg of
            // 30 rows; tenth red team), so they are sized as the casts are (`typeName`).
            let arguments = try argumentCursors()
            guard arguments.count >= 2 else { return }
            guard let typmod = upperBound(arguments[1]) else { throw unbounded(name, "length", "\(name)(x, 104, true), with the length written as a number") }
            let (type, length, bytesPerUnit) = name == "bpchar" ? ("char", typmod - 4, 1.0) : ("bit", typmod, 1.0 / 8)
            let bytes = max(0, length) * bytesPerUnit
            try allocateCall(bytes,
                             "\(name)() pads every value to \(Self.describe(length)) \(type == "char" ? "characters" : "bits"), as a cast to \(type)(\(Self.describe(length))) does, over this policy's limit of \(policy.maxFunctionResultBytes) bytes",
                             "Use varchar or text, which do not pad, or a shorter length.")
        case "polygon":
            // polygon(npts, circle) makes npts points of 16 bytes (60 million points: 954 MB, ninth red team).
            let arguments = try argumentCursors()
            guard arguments.count == 2 else { return }
            guard let points = upperBound(arguments[0]) else { throw unbounded(name, "number of points", "polygon(least(n, 1000), c)") }
            let bytes = max(0, points) * 16
            try allocateCall(bytes,
                             "polygon() would make \(Self.describe(points)) points, \(Self.describe(bytes)) bytes, over this policy's limit of \(policy.maxFunctionResultBytes) bytes",
                             "Use fewer points; results over \(policy.maxFunctionResultBytes) bytes are refused before they reach the server.")
        case "regexp_matches", "regexp_match":
            // The server keeps every match's start and end for each group (8 bytes), and an empty
            // match may be found at every position: 127 empty groups over a 1 MB text took ~1 GB
            // (sixth red team, 7.6 MB a group measured). A pattern Palisade does not read counts
            // as one group; a text only the data decides counts a byte, as elsewhere.
            let arguments = try argumentCursors()
            guard arguments.count >= 2 else { return }
            let source = sizeBound(arguments[0])
            let groups = constantValue(arguments[1])?.string.map { Double($0.utf8.filter { $0 == UInt8(ascii: "(") }.count) } ?? 1
            let bytes = (source + 1) * (groups + 1) * 8
            try allocateCall(bytes,
                             "\(name)() could keep \(Self.describe(bytes)) bytes of match positions (a \(Self.describe(source))-byte text, a match at every position, \(Int(groups)) groups), over this policy's limit of \(policy.maxFunctionResultBytes) bytes",
                             "Match within a shorter text, or with fewer groups; results over \(policy.maxFunctionResultBytes) bytes are refused before they reach the server.")
        default: break
        }
    }

    /// Work that grows with the square of a json (`JSONPathShape`: `.**`, the root walked again, a
    /// variables json walked for every item; jsonb_pretty indents every line by its depth). A json
    /// only the data decides is the data's for `.**` and jsonb_pretty; one the text makes may nest as
    /// deep, and hold as many items, as it is long (`repeat('[', 8000)`), and one a parameter brings
    /// is the client's, as large as it likes. `path` is nil for jsonb_pretty.
    mutating func checkSquareOfJSON(_ name: String, target: ParseTreeCursor, path: ParseTreeCursor?, variables: ParseTreeCursor? = nil,
                                    offset: Int?) throws {
        let limit = shared.policy.maxFunctionResultBytes
        func refuse(_ message: String, _ hint: String) -> Denial {
            Denial(rule: .argumentLimit, message: message, hint: hint, offset: offset, statementType: analysis.statementType)
        }
        let shape: JSONPathShape
        if let path, let text = constantValue(path)?.string {
            shape = JSONPathShape(text)
        } else if let path, isParameter(path) || !readsRows(path) {
            // A path the client writes but Palisade cannot read (`'…' || ''`, a parameter) may do any
            // of it, its subscript lists too, over any json: refused, as unknown syntax is.
            throw refuse("\(name) takes a jsonpath that the query builds or a parameter brings, which Palisade cannot read to bound its work",
                         "Write the jsonpath out as one literal ('$.a[*] ? (@ > 1)').")
        } else if let path, isClosed(path) {
            // A column of rows the query makes (`websearch_to_tsquery(…) AS q` in FROM, `tsv @@ q`).
            // Text becomes a jsonpath only by a cast (none is implicit), so where the query casts to
            // jsonpath its rows may carry any path they build, its subscript lists multiplied by
            // concatenation or copies (`(SELECT '$[0,0,…]…'::jsonpath AS p) s` returned 10^8 items):
            // refused as a built one is. Otherwise it may carry the text's constants, so it counts as
            // walking the json again.
            if tree.contains("{\"String\":{\"sval\":\"jsonpath\"}}") || tree.contains("{\"String\":{\"sval\":\"_jsonpath\"}}") {
                throw refuse("\(name) takes a jsonpath from rows the query makes, which Palisade cannot read to bound its work",
                             "Write the jsonpath out as one literal where it is used ('$.a[*] ? (@ > 1)').")
            }
            shape = JSONPathShape(walksEveryDepth: true, walksRootAgain: true, usesVariables: variables != nil)
        } else {
            // jsonb_pretty, or a path the data holds (the data's, as a table's json is).
            shape = JSONPathShape(walksEveryDepth: true)
        }
        if shape.fanOut > Self.mostJSONPathFanOut {
            throw refuse("\(name)'s subscript lists return each item once per subscript, and lists in a row multiply: up to \(Self.describe(shape.fanOut)) copies of each item, over the \(Int(Self.mostJSONPathFanOut)) a path may make",
                         "Name each element once (`$.a[0, 1]`), or take the elements with a wildcard (`$.a[*]`).")
        }
        if shape.everyDepthWalks > 1 {
            throw refuse("\(name)'s path walks every depth (`.**`) \(shape.everyDepthWalks) times: each walks every depth again below every item the one before returned, so the items grow with the json's depth to that power",
                         "Use `.**` once in a path (`$.**.name`), or name the levels you need.")
        }
        let targetIsTheTexts = isClosed(target)
        if shape.fanOut > 1, targetIsTheTexts {
            // Every copy is the item again: 256 copies of a 1 MB string took 996 MB (eleventh round).
            let copies = shape.fanOut * sizeBound(target)
            if copies > Double(limit) {
                throw refuse("\(name)'s subscript lists return each item up to \(Self.describe(shape.fanOut)) times, over a json of up to \(Self.describe(sizeBound(target))) bytes the query makes: up to \(Self.describe(copies)) bytes of copies, over this policy's limit of \(limit) bytes",
                             "Name each element once (`$.a[0, 1]`), or take the elements with a wildcard (`$.a[*]`).")
            }
            try allocate(copies)
        }
        guard shape.mayCostSquare else { return }
        if shape.walksRootAgain, !targetIsTheTexts {
            throw refuse("\(name) walks the whole json again for every item (the root named again, which lax mode also unwraps in a comparison), over a json the query's text does not bound: its work grows with the square of the json",
                         "Inside a filter compare with `@` (the current item); in strict mode ('strict $.a[*] ? (@.b == $.c)') a member of the root is one lookup; or write the value out as a variable.")
        }
        let targetSize = jsonDepthBound(target)
        var bytes = shape.walksEveryDepth || shape.walksRootAgain ? 2 * targetSize * targetSize : 0
        if shape.usesVariables, let variables {
            guard isClosed(variables) else {
                throw refuse("\(name) walks a variables json the query's text does not write for every item of its target: its work grows with the product of the two",
                             "Write the variables json out in the query ('{\"min\": 10}').")
            }
            let variablesSize = jsonDepthBound(variables)
            if !targetIsTheTexts, variablesSize > Self.largestVariablesOverData {
                throw refuse("\(name) walks variables of up to \(Self.describe(variablesSize)) bytes for every item of a json the query's text does not bound, over the \(Int(Self.largestVariablesOverData)) bytes such variables may take",
                             "Pass smaller variables, or compare with the table's own values.")
            }
            bytes = max(bytes, 2 * (targetSize + 1) * variablesSize)
        }
        guard bytes > 2 else { return }  // a json of a byte or none: nothing to walk twice
        if bytes > Double(limit) {
            throw refuse("\(name) over a json the query's text makes (up to \(Self.describe(max(targetSize, 1))) bytes, so as many items and as deeply nested) could take \(Self.describe(bytes)) bytes: its work grows with the square of the json, over this policy's limit of \(limit) bytes",
                         "Apply it to a table's json, or to a shorter json the text writes out; a path without `**` whose filters compare `@` with constants is not limited this way.")
        }
        try allocate(bytes)
    }

    /// The most copies of each item a jsonpath's subscript lists may return (`$[0,0,…]`): a few
    /// elements named in a list, not a multiplier.
    static let mostJSONPathFanOut = 256.0

    /// The most bytes of variables a jsonpath may walk for every item of a json the text does not
    /// bound (a table's, a parameter's): a few constants to compare with, not a second table.
    static let largestVariablesOverData = 1024.0

    /// Whether the node at `argument` reads rows: a column, or count(*).
    func readsRows(_ argument: ParseTreeCursor) -> Bool {
        var probe = argument
        let start = probe.offset
        guard (try? probe.skipValue()) != nil else { return true }
        let node = UnsafeBufferPointer(rebasing: tree[start..<probe.offset])
        return node.contains("{\"ColumnRef\":") || node.contains("\"agg_star\":true")
    }

    /// Whether the node at `argument` is a parameter ($1), whose value the client sends with Bind.
    func isParameter(_ argument: ParseTreeCursor) -> Bool {
        var probe = argument
        let start = probe.offset
        guard (try? probe.skipValue()) != nil else { return true }
        return UnsafeBufferPointer(rebasing: tree[start..<probe.offset]).contains("{\"ParamRef\":")
    }

    /// Whether the node at `argument` is a call of a full-text search function (`to_tsquery(…)`,
    /// `to_tsvector(…)`), which makes `@@` full-text search's match rather than jsonpath's.
    func callsTextSearch(_ argument: ParseTreeCursor) -> Bool {
        var probe = argument
        let start = probe.offset
        guard (try? probe.skipValue()) != nil else { return false }
        let node = tree[start..<probe.offset]
        let call = Array("{\"FuncCall\":{\"funcname\":[".utf8)
        guard node.starts(with: call), let close = node.firstIndex(of: UInt8(ascii: "]")) else { return false }
        let names = String(decoding: node[(node.startIndex + call.count)..<close], as: UTF8.self)
        guard let last = names.split(separator: "\"sval\":\"").last?.split(separator: "\"").first else { return false }
        return Self.textSearchFunctions.contains(String(last))
    }

    /// ts_headline's last argument is its options, except in ts_headline(config, document, query),
    /// whose last is a tsquery call (`to_tsquery('english', 'cat')`); then the markers are the defaults.
    func headlineOptionsAreLast(_ arguments: [ParseTreeCursor]) -> Bool {
        guard let last = arguments.last else { return false }
        return arguments.count == 4 || !callsTextSearch(last)
    }

    /// `<b>` and `</b>`, ts_headline's default StartSel and StopSel.
    static let defaultHeadlineMarkers = 8.0

    /// Why a profile that hides statistics refuses the built-in `name`, in a call or in attribute
    /// notation (`('orders'::regclass).pg_relation_size` is `pg_relation_size('orders')`).
    func statisticsReason(ofFunction name: String) -> (why: String, hint: String)? {
        guard shared.policy.hidesStatistics else { return nil }
        if PG15Catalog.transactionIDArgumentFunctions.contains(name) {
            return ("it reads transaction ids, which count every tenant's writes (an untyped literal becomes one: mxid_age('1') reads the server's multixact counter)",
                    "Leave out transaction ids; use the table's own columns, such as timestamps.")
        }
        if StatisticsCatalog.functions.contains(name) {
            return ("sizes on disk count every tenant's rows, which row-level security does not filter",
                    "Count the rows you can see with count(*) instead.")
        }
        return nil
    }

    static let textSearchFunctions: Set<String> = [
        "to_tsquery", "plainto_tsquery", "phraseto_tsquery", "websearch_to_tsquery", "tsquery_phrase", "to_tsvector",
        "setweight", "strip", "array_to_tsvector", "jsonb_to_tsvector", "json_to_tsvector", "ts_delete", "ts_filter", "ts_rewrite",
    ]

    /// Whether nothing but the query's text decides the node at `argument`, for what may be left to
    /// the server: a format string, a `generate_series` step, the size of a text (`sizeBound`).
    /// Counts and lengths need a bound whatever feeds them (`upperBound`): `0 * id + 10^9` has a
    /// column and is the text's all the same. A column is the text's own where the query makes rows
    /// itself: a column of a subquery, a WITH query, a VALUES list or a function in FROM may carry a
    /// constant of the text (`repeat('x', n) FROM (SELECT 1000000000 AS n) s`).
    mutating func isClosed(_ argument: ParseTreeCursor) -> Bool {
        var probe = argument
        let start = probe.offset
        guard (try? probe.skipValue()) != nil else { return true }
        let node = UnsafeBufferPointer(rebasing: tree[start..<probe.offset])
        if node.contains("{\"ParamRef\":") { return false }
        // count(*) counts rows, as a column reads them.
        return !readsRows(argument) || queryMakesRows
    }

    /// Whether the query has a row source of its own making, whose columns may carry its constants.
    var queryMakesRows: Bool {
        mutating get {
            if let known = makesRowsCache { return known }
            let makes = tree.containsNode(ofAnyType: ["RangeSubselect", "CommonTableExpr", "RangeFunction", "RangeTableFunc"])
            makesRowsCache = makes
            return makes
        }
    }

    /// The most bytes the value at `argument` takes, for sizing what a function builds from it:
    /// - the value's own where the text states it;
    /// - the policy's limit where it calls a function that allocates by an argument, each such
    ///   call being held to the limit (`upper(repeat('x', 1000000))` counts 1 MB, so repeating it
    ///   again is refused), and so for a column of rows the query makes where those rows call one
    ///   (`repeat(x, 1000) FROM (SELECT repeat('x', 1000000) AS x) s`);
    /// - where only the text decides it otherwise, the size of its parse tree, which its constants
    ///   are part of (`now()`, `upper('ab')`);
    /// - one byte (at least) where a table's rows or a parameter decide it, which are the server's.
    mutating func sizeBound(_ argument: ParseTreeCursor) -> Double {
        let limit = Double(shared.policy.maxFunctionResultBytes)
        var probe = argument
        let start = probe.offset
        guard (try? probe.skipValue()) != nil else { return limit }
        let node = UnsafeBufferPointer(rebasing: tree[start..<probe.offset])
        // Numbers the text makes large (`1e131071::text`, `(10::numeric ^ 131071)::text`).
        let numbers = numberTextBytes(node)
        if let bytes = constantValue(argument)?.bytesBound { return bytes + numbers }
        if numbers >= limit || callsAllocatingFunction(node) { return limit }
        if node.contains("{\"ColumnRef\":"), queryMakesRows, madeRowsAllocate(outside: start) { return limit }
        return (isClosed(argument) ? Double(node.count) : 1) + numbers
    }

    /// `sizeBound` of an argument whose size a call multiplies: a parameter that reaches it is
    /// held to `boundParameterBytes` at each Bind, and counts as many here (`replace($1, 'x', $2)`
    /// sized each parameter at a byte: 603 MB from a 301 KB Bind, eighteenth red team).
    mutating func multipliedSizeBound(_ argument: ParseTreeCursor) -> Double {
        let size = sizeBound(argument)
        var probe = argument
        let start = probe.offset
        guard (try? probe.skipValue()) != nil else { return size }
        let parameters = reachingParameters(start..<probe.offset, arrays: true)
        guard !parameters.isEmpty else { return size }
        analysis.boundParameters.formUnion(parameters)
        return size + (parameters.contains(Self.unknownParameter) ? Self.parameterBytes : Self.boundParameterBytes)
    }

    /// Set-returning functions that may make a row of each byte of their text.
    static let rowPerByteFunctions: Set<String> = ["regexp_split_to_table", "string_to_table", "regexp_matches"]

    /// The most rows a set-returning function (other than `generate_series`) makes from the values
    /// the text gives it: one per `bytesPerRow` of its largest such argument, and one more, since a
    /// split, an unnested element, a json's element or key and a regexp's match each take some of
    /// it. The planner cannot see these: `regexp_split_to_table(repeat('a,', 500000), ',')` made
    /// 500,001 rows it estimated at 1,000. A parameter counts as the limit (the client may send
    /// that much); a table's values are the data's, whose rows the planner counts.
    mutating func rowsFromText(_ arguments: [ParseTreeCursor], bytesPerRow: Double) -> Double {
        var largest = 0.0
        for argument in arguments {
            var probe = argument
            let start = probe.offset
            guard (try? probe.skipValue()) != nil else { return Double(shared.policy.maxFunctionResultBytes) + 1 }
            if UnsafeBufferPointer(rebasing: tree[start..<probe.offset]).contains("{\"ParamRef\":") {
                largest = max(largest, Double(shared.policy.maxFunctionResultBytes))
            } else if isClosed(argument) {
                largest = max(largest, sizeBound(argument))
            }
        }
        return (largest / bytesPerRow).rounded(.up) + 1
    }

    /// How deeply the json at `argument` may nest where the text makes it: a level per byte of its
    /// constants (`'[[[…]]]'`) and per call that wraps one (`jsonb_build_array(…)`), through the rows
    /// the query makes too; as deep as the limit where a call allocates (`repeat('[', 8000)`). A
    /// table's json is the data's (0 here).
    mutating func jsonDepthBound(_ argument: ParseTreeCursor) -> Double {
        let limit = Double(shared.policy.maxFunctionResultBytes)
        var probe = argument
        let start = probe.offset
        guard (try? probe.skipValue()) != nil else { return limit }
        let node = UnsafeBufferPointer(rebasing: tree[start..<probe.offset])
        // A parameter's json is the client's: as large and as deep as it sends.
        if node.contains("{\"ParamRef\":") || callsAllocatingFunction(node) || numberTextBytes(node) >= limit { return limit }
        var depth = literalBytes(start..<probe.offset)
        node.forEachOccurrence(of: "{\"FuncCall\":") { _ in depth += 1 }
        if node.contains("{\"ColumnRef\":"), queryMakesRows {
            if madeRowsAllocate(outside: start) { return limit }
            depth += madeRowsLiteralBytes + functionCallCount
        }
        return depth
    }

    /// Function calls in the whole query, each of which may wrap a json once more.
    var functionCallCount: Double {
        mutating get {
            if let known = functionCallCountCache { return known }
            var count = 0.0
            tree.forEachOccurrence(of: "{\"FuncCall\":") { _ in count += 1 }
            functionCallCountCache = count
            return count
        }
    }

    /// Whether `node` calls a function that allocates by an argument. Whether a jsonpath query fans
    /// out is read from the node's string constants, so the decision then depends on their values.
    mutating func callsAllocatingFunction(_ node: UnsafeBufferPointer<UInt8>) -> Bool {
        if Self.allocatingFunctions.contains(where: { node.contains("{\"String\":{\"sval\":\"\($0)\"}}") }) { return true }
        guard node.contains("{\"String\":{\"sval\":\"jsonb_path_query") else { return false }
        analysis.readsConstantValues = true
        return Self.callsFanningJSONPath(node)
    }

    /// A jsonpath query whose path repeats its items (`$[0,0]`): its result is copies of its json,
    /// so what reads it (a second such query, a column of rows that hold it) reads a made value.
    static func callsFanningJSONPath(_ node: UnsafeBufferPointer<UInt8>) -> Bool {
        guard node.contains("{\"String\":{\"sval\":\"jsonb_path_query") else { return false }
        var fans = false
        node.forEachOccurrence(of: "{\"A_Const\":{\"sval\":{\"sval\":\"") { offset in
            guard !fans else { return }
            var probe = ParseTreeCursor(node)
            probe.offset = offset
            guard (try? probe.skipValue()) != nil else { fans = true; return }
            var reader = ParseTreeCursor(UnsafeBufferPointer(rebasing: node[offset..<probe.offset]))
            var text: String?
            // {"A_Const":{"sval":{"sval":"…"},"location":N}}
            let read: ()? = try? reader.forEachKey { reader, _ in
                try reader.forEachKey { reader, key in
                    guard case "sval" = key else { try reader.skipValue(); return }
                    try reader.forEachKey { reader, _ in text = try reader.string() }
                }
            }
            fans = read == nil || text.map { JSONPathShape($0).fanOut > 1 } ?? true
        }
        return fans
    }

    /// Whether a row source the query makes (a subquery, WITH query or function in FROM) calls a
    /// function that allocates by an argument: its columns may then carry what that call made. A
    /// row source that holds the call being sized is not counted: the call reads the columns of
    /// the rows inside it (`WITH o AS (SELECT format('ORD-%s', id) FROM orders)`), never its own.
    mutating func madeRowsAllocate(outside offset: Int) -> Bool {
        allocatingMadeRows.contains { !$0.contains(offset) }
    }

    /// The row sources the query makes that call an allocating function (read once).
    var allocatingMadeRows: [Range<Int>] {
        mutating get {
            if let known = madeRowsAllocateCache { return known }
            // What cannot be read counts as allocating, wherever the call stands.
            let ranges = madeRowSources().compactMap { source -> Range<Int>? in
                guard let source else { return 0..<0 }
                return callsAllocatingFunction(UnsafeBufferPointer(rebasing: tree[source])) ? source : nil
            }
            madeRowsAllocateCache = ranges
            return ranges
        }
    }

    /// Adds a call's result to what the query's allocating calls make together, which the
    /// policy's limit also bounds: each of 90 `repeat('x', 1000000)` fits it, their `concat` does
    /// not (370 MB in the server, fifth red team).
    mutating func allocate(_ bytes: Double) throws {
        // The parser's copies of the expression (BETWEEN, IN lists, `(expr).*`, a CASE's value) are
        // each folded by the planner into a value of their own: ten levels of BETWEEN over one
        // 1 MB repeat(…), 273 bytes, took 1.02 GB (thirty-eighth red team, second pass).
        let bytes = max(bytes, 0) * expressionCopies
        analysis.allocatedBytes += bytes
        analysis.madeBytes += bytes
        let limit = shared.policy.maxFunctionResultBytes
        guard analysis.allocatedBytes > Double(limit) else { return }
        let (message, hint) = Self.allocatedTogether(analysis.allocatedBytes, limit: limit)
        throw Denial(rule: .argumentLimit, message: message, hint: hint, offset: remainingLocation(), statementType: analysis.statementType)
    }

    /// The denial of what the query's allocating calls make together, one wording for both ways they
    /// are counted: calls sized here, and calls that copy their argument (`copyAllocate`).
    static func allocatedTogether(_ bytes: Double, limit: Int) -> (message: String, hint: String) {
        ("the query's calls that build text (repeat, lpad, format, replace, regexp_matches, encode, quote_literal, to_json, array_fill, …) could make \(describe(bytes)) bytes together, over this policy's limit of \(limit) bytes",
         "Build less text in one query; together such results may be at most \(limit) bytes.")
    }

    /// A count, length or dimension with no bound Palisade can show: a column, a parameter, or an
    /// expression it does not evaluate (`count(*) * 10^9`, `0 * id + 10^9`).
    func unbounded(_ function: String, _ argument: String, _ example: String) -> Denial {
        let limit = function == "array_fill" ? "\(shared.policy.maxGeneratedRows) elements" : "\(shared.policy.maxFunctionResultBytes) bytes"
        return Denial(rule: .argumentLimit,
                      message: "\(function)()'s \(argument) has no bound Palisade can show (it is not a number written out, and not capped by least()), so the result could pass this policy's limit of \(limit)",
                      hint: "Write it as a number, or cap it: \(example).", offset: remainingLocation(), statementType: analysis.statementType)
    }

    /// The functions `checkArgumentLimits` holds to the policy's limit on result bytes.
    static let allocatingFunctions = ["repeat", "lpad", "rpad", "format", "replace", "regexp_replace", "array_fill", "ts_rewrite",
                                      "ts_headline", "polygon"]

    /// The most a count or length at `argument` can be: its value where the text states it, or the
    /// least stated bound of a `least(…)` (`repeat('  ', least(depth, 50))`, where the depth comes
    /// from rows the query makes). Nil where nothing bounds it.
    mutating func upperBound(_ argument: ParseTreeCursor) -> Double? {
        if let number = constantValue(argument)?.number { return number }
        var probe = argument
        var bounds: [Double] = []
        var least = false
        do {
            try probe.forEachKey { probe, type in
                if case "TypeCast" = type {
                    // least(n, 50)::int: a cast to an integer type keeps the bound (rounding adds at most 1).
                    try probe.forEachKey { probe, key in
                        if case "arg" = key, let bound = upperBound(probe) { bounds.append(bound + 1); least = true }
                        try probe.skipValue()
                    }
                    return
                }
                guard case "MinMaxExpr" = type else { try probe.skipValue(); return }
                try probe.forEachKey { probe, key in
                    switch key {
                    case "op": least = try probe.string() == "IS_LEAST"
                    case "args":
                        try probe.expect(UInt8(ascii: "["))
                        while try probe.nextElement() {
                            if let bound = upperBound(probe) { bounds.append(bound) }
                            try probe.skipValue()
                        }
                    default: try probe.skipValue()
                    }
                }
            }
        } catch {
            return nil
        }
        return least ? bounds.min() : nil
    }

    /// Whether the argument is a literal the text states (after casts) that is neither a number, nor
    /// a timestamp, nor an interval Palisade reads.
    mutating func statesUnreadableTime(_ argument: ParseTreeCursor) -> Bool {
        guard let text = constantValue(argument)?.string else { return false }
        return Double(text.trimmingSpaces)?.isFinite != true && TimeLiteral.seconds(ofTimestamp: text) == nil && TimeLiteral.seconds(ofInterval: text) == nil
    }

    func unevaluated(_ function: String, _ argument: String, _ advice: String) -> Denial {
        let limit = function == "array_fill" ? "\(shared.policy.maxGeneratedRows) elements" : "\(shared.policy.maxFunctionResultBytes) bytes"
        return Denial(rule: .argumentLimit,
                      message: "\(function)()'s \(argument) is an expression Palisade does not evaluate, and nothing but the query's text decides it, so Palisade cannot show that the result stays within this policy's limit of \(limit)",
                      hint: "\(advice), within the limit.", offset: remainingLocation(), statementType: analysis.statementType)
    }

    static func describe(_ value: Double) -> String {
        value < 1e15 ? String(Int(value)) : String(value)
    }

    /// The number of rows of generate_series(start, stop[, step]) with constant arguments: numbers
    /// (step 1 by default), or timestamps with an interval step. Nil where the text does not say.
    mutating func seriesLength(_ arguments: [ParseTreeCursor]) -> Double? {
        let values = arguments.prefix(3).map { constantValue($0) }
        guard let startValue = values[0], let stopValue = values[1] else { return nil }
        let start: Double, stop: Double, step: Double
        if let first = startValue.number, let last = stopValue.number {
            start = first
            stop = last
            if values.count == 3 {
                guard let given = values[2]?.number else { return nil }
                step = given
            } else {
                step = 1
            }
        } else if let first = startValue.string.flatMap(TimeLiteral.seconds(ofTimestamp:)),
                  let last = stopValue.string.flatMap(TimeLiteral.seconds(ofTimestamp:)),
                  values.count == 3, let interval = values[2]?.string.flatMap(TimeLiteral.seconds(ofInterval:)) {
            start = first
            stop = last
            step = stop >= start ? interval : -interval
        } else {
            return nil
        }
        guard step != 0, (stop - start) / step >= 0 else { return step == 0 ? nil : 0 }
        return ((stop - start) / step).rounded(.down) + 1
    }

    /// The rows of generate_series(start, stop, step) whose bounds are the clock (`now()`,
    /// `current_date`, `date_trunc('month', now())`) or a constant timestamp, each plus or minus
    /// constant intervals or days, and whose step is a constant interval: the false positives'
    /// "days without orders in the last 30 days" (sixteenth red team, a false-positive sweep). The
    /// clock is read now, and truncations and dates widen the span by their unit.
    mutating func clockSeriesLength(_ arguments: [ParseTreeCursor]) -> Double? {
        guard arguments.count == 3, let step = constantValue(arguments[2])?.string.flatMap(TimeLiteral.seconds(ofInterval:)), step > 0,
              let start = clockTime(arguments[0]), let stop = clockTime(arguments[1]) else { return nil }
        let span = abs(stop.seconds - start.seconds) + start.slack + stop.slack
        return (span / step).rounded(.down) + 1
    }

    /// A time as seconds since 1970, with how much later it may be (a date or a truncation).
    private mutating func clockTime(_ node: ParseTreeCursor) -> (seconds: Double, slack: Double)? {
        if let text = constantValue(node)?.string, let seconds = TimeLiteral.seconds(ofTimestamp: text) { return (seconds, 86_400) }
        let now = Double(UTCTime.nowMicros()) / 1_000_000
        var probe = node
        var result: (seconds: Double, slack: Double)?
        _ = try? probe.forEachKey { probe, type in
            switch type {
            case "SQLValueFunction":
                try probe.forEachKey { probe, key in
                    if case "op" = key { result = try probe.string() == "SVFOP_CURRENT_DATE" ? (now, 86_400) : (now, 0) } else { try probe.skipValue() }
                }
            case "FuncCall":
                var name = "", arguments: [ParseTreeCursor] = []
                try probe.forEachKey { probe, key in
                    switch key {
                    case "funcname": name = try Analyzer.stringList(&probe).last ?? ""
                    case "args":
                        try probe.expect(UInt8(ascii: "["))
                        while try probe.nextElement() { arguments.append(probe); try probe.skipValue() }
                    default: try probe.skipValue()
                    }
                }
                switch name {
                case "now", "statement_timestamp", "transaction_timestamp", "clock_timestamp": result = arguments.isEmpty ? (now, 0) : nil
                case "date_trunc" where arguments.count == 2:
                    guard let unit = constantValue(arguments[0])?.string.flatMap({ TimeLiteral.seconds(ofInterval: "1 " + $0) }),
                          let inner = clockTime(arguments[1]) else { return }
                    // A month or year unit is longer than the interval table's average.
                    result = (inner.seconds, inner.slack + unit * 1.1)
                default: return
                }
            case "TypeCast":
                try probe.forEachKey { probe, key in
                    if case "arg" = key, let inner = clockTime(probe) { result = (inner.seconds, inner.slack + 86_400) }
                    try probe.skipValue()
                }
            case "A_Expr":
                var symbol = "", left: ParseTreeCursor?, right: ParseTreeCursor?
                try probe.forEachKey { probe, key in
                    switch key {
                    case "name": symbol = try Analyzer.stringList(&probe).last ?? ""
                    case "lexpr": left = probe; try probe.skipValue()
                    case "rexpr": right = probe; try probe.skipValue()
                    default: try probe.skipValue()
                    }
                }
                guard symbol == "+" || symbol == "-", let left, let right, let time = clockTime(left),
                      let offset = constantValue(right).flatMap({ $0.number.map { $0 * 86_400 } ?? $0.string.flatMap(TimeLiteral.seconds(ofInterval:)) })
                else { return }
                result = (time.seconds + (symbol == "+" ? offset : -offset), time.slack)
            default: return
            }
        }
        return result
    }

    /// The widest width a format() string states (`%1000000s`, `%-5$20s`), whether one is taken
    /// from an argument (`%*s`), and how many conversions it has.
    /// The arguments (1 for the first after the format) that `%*s` and `%*n$s` take widths from,
    /// read as PostgreSQL's `text_format` reads them: a width taken from the next argument comes
    /// before its value's, and after a position (`%3$s`, `%*2$s`) the next is the one after it.
    static func formatWidthArguments(_ format: String) -> Set<Int> {
        let bytes = Array(format.utf8)
        var index = 0, last = 0
        var widths = Set<Int>()
        func digits() -> Int? {
            var number = 0, any = false
            while index < bytes.count, bytes[index] >= UInt8(ascii: "0"), bytes[index] <= UInt8(ascii: "9") {
                number = min(number * 10 + Int(bytes[index] - UInt8(ascii: "0")), Int(Int32.max))
                index += 1
                any = true
            }
            return any ? number : nil
        }
        while index < bytes.count {
            guard bytes[index] == UInt8(ascii: "%") else { index += 1; continue }
            index += 1
            guard index < bytes.count else { break }
            if bytes[index] == UInt8(ascii: "%") { index += 1; continue }
            var position: Int?, widthPosition: Int?
            // A first number is a position before `$`, and otherwise the width, which ends the specifier.
            var widthWritten = false
            if let number = digits() {
                if index < bytes.count, bytes[index] == UInt8(ascii: "$") { position = number; index += 1 } else { widthWritten = true }
            }
            if !widthWritten {
                while index < bytes.count, bytes[index] == UInt8(ascii: "-") { index += 1 }
                if index < bytes.count, bytes[index] == UInt8(ascii: "*") {
                    index += 1
                    if let number = digits() {
                        widthPosition = number
                        if index < bytes.count, bytes[index] == UInt8(ascii: "$") { index += 1 }
                    } else {
                        widthPosition = 0
                    }
                } else {
                    _ = digits()
                }
            }
            if let widthPosition {
                last = widthPosition > 0 ? widthPosition : last + 1
                widths.insert(last)
            }
            last = position ?? last + 1
            index += 1  // the conversion's type
        }
        return widths
    }

    static func formatShape(_ format: String) -> (widest: Double, takesWidthArgument: Bool, conversions: Int) {
        let bytes = Array(format.utf8)
        var widest = 0.0
        var fromArgument = false
        var conversions = 0
        var index = 0
        while index < bytes.count {
            guard bytes[index] == UInt8(ascii: "%") else { index += 1; continue }
            index += 1
            if index < bytes.count, bytes[index] == UInt8(ascii: "%") { index += 1; continue }
            // Digits may be an argument position (`n$`), after which come flags and the width.
            var value = 0.0
            while index < bytes.count {
                let byte = bytes[index]
                if byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") {
                    value = value * 10 + Double(byte - UInt8(ascii: "0"))
                } else if byte == UInt8(ascii: "$") {
                    value = 0
                } else if byte == UInt8(ascii: "-") {
                    // a flag
                } else if byte == UInt8(ascii: "*") {
                    fromArgument = true
                } else {
                    break
                }
                index += 1
            }
            widest = max(widest, value)
            conversions += 1
        }
        return (widest, fromArgument, conversions)
    }
}
