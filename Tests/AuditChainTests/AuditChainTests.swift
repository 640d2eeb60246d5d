import Testing
@testable import AuditChain

@Test func moduleBuilds() {
    _ = AuditChain.self
}
