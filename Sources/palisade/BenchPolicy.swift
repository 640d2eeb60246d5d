import ArgumentParser
import Foundation
import PalisadeServer
import QueryPolicy

/// Prints the cost of a decision next to libpg_query's own parse of the same text, measured in one run.
struct BenchPolicy: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench-policy",
        abstract: "Median time per policy decision versus libpg_query's parse of the same text.")

    @OptionGroup var options: PolicyOption

    @Option(help: "Timed batches per measurement (the median batch is reported).")
    var batches = 31

    @Option(help: "Calls per batch.")
    var batchSize = 200

    static let queries = PolicyBenchmarkHooks.queries

    /// For profiling: run one variant on one query (by index) and print nothing.
    @Option(help: .hidden)
    var only: String?

    @Option(help: .hidden)
    var onlyQuery = 0

    func run() throws {
        let engine = try loadEngine(options.policy)
        let variants: [(String, (String) -> Void)] = [
            ("parse", { _ = PolicyBenchmarkHooks.parseOnly($0) }),
            ("scan", { _ = PolicyBenchmarkHooks.parseAndScan($0) }),
            ("walk", { _ = PolicyBenchmarkHooks.parseAndWalk($0, engine: engine) }),
            ("decision", { _ = engine.evaluateUncached($0) }),
            ("cached", { _ = engine.evaluate($0) }),
        ]
        if let only, let variant = variants.first(where: { $0.0 == only }) {
            guard Self.queries.indices.contains(onlyQuery) else {
                throw ConfigurationError(description: "--only-query must be 0..<\(Self.queries.count)")
            }
            for _ in 0..<batches * batchSize { variant.1(Self.queries[onlyQuery].1) }
            return
        }
        print("policy \(engine.policy.profile) \(engine.policy.version.prefix(12)); median of \(batches) rounds of \(batchSize) calls per variant, interleaved")
        print("query            parse(µs)  scan(µs)  walk(µs)  decision(µs)  ratio  cached(µs)")
        for (name, sql) in Self.queries {
            guard engine.evaluate(sql).isAllowed else { throw ConfigurationError(description: "\(name) is denied by this policy") }
            let times = interleavedMedians(variants.map { variant in { variant.1(sql) } })
            let median = Dictionary(uniqueKeysWithValues: zip(variants.map(\.0), times))
            let (parse, scan, walk, decision, cached) = (median["parse"]!, median["scan"]!, median["walk"]!, median["decision"]!, median["cached"]!)
            print(String(format: "%-15@  %9.2f  %8.2f  %8.2f  %12.2f  %4.2fx  %10.3f",
                         name as NSString, parse, scan, walk, decision, decision / parse, cached))
        }
        print("""
        parse:    pg_query_parse alone (libpg_query's public parse to its JSON tree)
        scan:     Palisade's one parse plus one pass over the tree that only skips it (the floor for any walk)
        walk:     Palisade's one parse plus the policy walk of the tree
        decision: a full decision with no cache: parse, policy walk, fingerprint, normalization, decision value
        cached:   an exact repeat of a text (prepared statements, retries)
        target:   decision at most 2.00x parse
        """)
    }

    /// Median µs per call of each body; rounds alternate between the bodies so that drift in the
    /// machine's speed (a shared, noisy host) touches all of them alike.
    private func interleavedMedians(_ bodies: [() -> Void]) -> [Double] {
        var samples = Array(repeating: [Double](), count: bodies.count)
        for round in -1..<batches {
            for (index, body) in bodies.enumerated() {
                let start = DispatchTime.now().uptimeNanoseconds
                for _ in 0..<batchSize { body() }
                if round >= 0 { samples[index].append(Double(DispatchTime.now().uptimeNanoseconds - start) / Double(batchSize) / 1000) }
            }
        }
        return samples.map { $0.sorted()[$0.count / 2] }
    }
}
