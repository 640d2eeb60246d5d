/// The relations PostgreSQL's planner builds for a query (`Analyzer.checkPlanning`), worked out as
/// it puts WITH queries in place. A WITH query marked NOT MATERIALIZED, or one without a marking
/// that is read exactly once, is planned again inside every query that reads it, and so inside
/// every copy of that one: two levels that each read the one before twice, one of them read once
/// and unmarked, doubled the planner's memory every 84 bytes of text (sixteenth red team, second
/// pass: 946 bytes took a backend 222 MB). Any other WITH query is planned once, where it is
/// defined, and each reference is one relation.
struct PlannedRelations {
    private struct Scope {
        /// Relations of its own text: FROM items, subqueries, views and functions by weight.
        var own = 0.0
        /// The WITH queries it reads, by name, with the copies of each reference (the parser copies
        /// the operand of BETWEEN and of an IN list: `Analyzer.expressionCopies`).
        var references: [(name: String, copies: Double)] = []
        /// The scopes of the WITH queries defined in it: a copy of it plans them again.
        var defined: [Int] = []
    }

    private struct WithQuery {
        var scope: Int
        var notMaterialized = false
    }

    /// The query itself, then each WITH query's body.
    private var scopes = [Scope()]
    private var open = [0]
    private var withQueries: [String: [WithQuery]] = [:]

    mutating func add(_ relations: Double) {
        scopes[open[open.count - 1]].own += relations
    }

    mutating func reference(withQuery name: String, copies: Double = 1) {
        let current = open[open.count - 1]
        scopes[current].own += copies
        scopes[current].references.append((name, copies))
    }

    /// Opens the body of a WITH query; what is read until `end()` is its own.
    mutating func beginWithQuery(_ name: String) {
        let scope = scopes.count
        scopes[open[open.count - 1]].defined.append(scope)
        scopes.append(Scope())
        open.append(scope)
        withQueries[name, default: []].append(WithQuery(scope: scope))
    }

    mutating func end() {
        open.removeLast()
    }

    /// The last WITH query of that name begun is marked NOT MATERIALIZED.
    mutating func markNotMaterialized(_ name: String) {
        guard let last = withQueries[name]?.indices.last else { return }
        withQueries[name]![last].notMaterialized = true
    }

    /// The relations of the whole query, each WITH query put in place where PostgreSQL puts it.
    /// A name given to two WITH queries is taken as put in place at every reference, each time as
    /// the larger: which one a reference reads depends on scopes this count does not keep.
    func total() -> Double {
        var referenceCounts: [String: Double] = [:]
        for scope in scopes { for reference in scope.references { referenceCounts[reference.name, default: 0] += reference.copies } }
        var inlinedScopes: Set<Int> = []
        var inlinedNames: Set<String> = []
        for (name, definitions) in withQueries
        where definitions.count > 1 || definitions[0].notMaterialized || referenceCounts[name] == 1 {
            inlinedNames.insert(name)
            for definition in definitions { inlinedScopes.insert(definition.scope) }
        }
        var memo: [Int: Double] = [:]
        var visiting: Set<Int> = []
        func expanded(_ index: Int) -> Double {
            if let known = memo[index] { return known }
            // A recursive query reading itself is planned once: PostgreSQL puts none in place.
            guard visiting.insert(index).inserted else { return 0 }
            let scope = scopes[index]
            var count = scope.own
            for reference in scope.references where inlinedNames.contains(reference.name) {
                count += reference.copies * (withQueries[reference.name]?.map { expanded($0.scope) }.max() ?? 0)
            }
            for defined in scope.defined where !inlinedScopes.contains(defined) { count += expanded(defined) }
            visiting.remove(index)
            memo[index] = count
            return count
        }
        return expanded(0)
    }
}
