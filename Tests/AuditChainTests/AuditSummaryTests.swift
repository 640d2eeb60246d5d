import Testing
@testable import AuditChain
import Encoding

@Suite struct BoundedCounterTests {
    @Test func countsAreExactWhileTheKeysFit() {
        var counter = BoundedCounter<String, Void>(capacity: 3)
        for (index, key) in ["a", "b", "a", "c", "a", "b"].enumerated() { counter.add(key, at: Int64(index)) }
        #expect(counter.isExact)
        #expect(counter.top().map(\.key) == ["a", "b", "c"])
        #expect(counter.top().map(\.count) == [3, 2, 1])
        #expect(counter["a"]?.firstMicros == 0 && counter["a"]?.lastMicros == 4)
    }

    @Test func aNewKeyReplacesTheSmallestAndCarriesItsCountAsError() {
        var counter = BoundedCounter<String, Void>(capacity: 2)
        for key in ["a", "a", "a", "b", "c"] { counter.add(key, at: 0) }
        #expect(!counter.isExact && counter.evictions == 1)
        #expect(counter["b"] == nil)
        let c = counter["c"]!
        #expect(c.count == 2 && c.error == 1 && !c.isExact)
        #expect(counter["a"]!.count == 3 && counter["a"]!.isExact)
    }

    /// Space-Saving's guarantee: any key seen more than total / capacity times is kept, and each
    /// kept count is an upper bound whose error bounds the overcount.
    @Test func heavyHittersSurviveAStreamOfManyRareKeys() {
        var counter = BoundedCounter<Int, Void>(capacity: 50)
        var truth: [Int: UInt64] = [:]
        var random = SplitMixForTest(seed: 1)
        for step in 0..<20_000 {
            let key = step % 10 == 0 ? Int(random.next() % 3) : 100 + Int(random.next() % 5000)
            truth[key, default: 0] += 1
            counter.add(key, at: Int64(step))
        }
        for heavy in 0..<3 {
            let item = counter[heavy]!
            #expect(item.count >= truth[heavy]! && item.count - item.error <= truth[heavy]!)
        }
        #expect(counter.top(3).map(\.key).sorted() == [0, 1, 2])
        #expect(counter.total == 20_000)
    }
}

struct SplitMixForTest {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

@Suite struct TimelineTests {
    static let day: Int64 = 86_400_000_000
    static let monday = UTCTime.parseISO8601("2026-11-30")!

    @Test func aGivenRangeFixesTheWidth() {
        var timeline = Timeline(since: Self.monday, until: Self.monday + Self.day)
        #expect(timeline.widthMicros == 3600 * 1_000_000)  // the first width that fits a day in 60 buckets
        timeline.add(at: Self.monday + 5, decision: .allow, rule: "allow.query")
        #expect(timeline.range(ofBucket: timeline.firstBucket!) == (Self.monday, Self.monday + timeline.widthMicros))
        #expect(timeline.lastBucket! - timeline.firstBucket! + 1 <= Timeline.maxBuckets)
    }

    @Test func withoutARangeTheWidthGrowsAndBucketsMergeWithoutLosingCounts() {
        var timeline = Timeline(since: nil, until: nil)
        let hour: Int64 = 3_600_000_000
        for step in 0..<(48 * 4) {
            timeline.add(at: Self.monday + Int64(step) * hour / 4, decision: step % 4 == 0 ? .deny : .allow, rule: step % 4 == 0 ? "stmt.dml" : "allow.query")
        }
        #expect(timeline.widthMicros == hour)
        #expect(timeline.lastBucket! - timeline.firstBucket! + 1 == 48)
        #expect(timeline.counts.values.reduce(0, +) == 192)
        let dml = timeline.rules.firstIndex(of: "stmt.dml")!
        let first = Timeline.Cell(bucket: timeline.firstBucket!, decision: .deny, rule: dml)
        #expect(timeline.counts[first] == 1)
        #expect(timeline.range(ofBucket: timeline.firstBucket!).since == Self.monday)
    }
}

@Suite struct AuditFilterTests {
    @Test func argumentsRoundTripThroughTheShell() {
        let filter = AuditFilter(decision: .deny, tenant: "", rule: "stmt.set", messageContains: "SET request.jwt.claims ",
                                 since: UTCTime.parseISO8601("2026-12-01T10:00:00Z"))
        #expect(filter.shellArguments == "--decision deny --rule stmt.set --tenant '' --message 'SET request.jwt.claims ' --since 2026-12-01T10:00:00.000000Z")
        #expect(AuditFilter.shellQuoted("it's") == "'it'\\''s'")
    }
}
