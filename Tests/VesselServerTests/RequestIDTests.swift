import Testing
@testable import VesselServer

@Suite("request ids")
struct RequestIDTests {
    @Test("generated request ids are random version-4 UUIDs")
    func format() throws {
        let pattern = try Regex("^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
        let ids = (0..<200).map { _ in InferenceCall.randomID() }
        #expect(ids.allSatisfy { $0.wholeMatch(of: pattern) != nil }, "\(ids.prefix(3))")
        #expect(Set(ids).count == ids.count)
        // Every hex digit outside the fixed bits shows up somewhere.
        #expect(Set(ids.joined().filter { $0 != "-" }).count == 16)
    }
}
