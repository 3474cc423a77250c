import Testing
@testable import HappyCore
@testable import HappyConfig
@testable import HappySessions
@testable import HappyTestSupport

@Suite struct SessionEnvironmentSharedRulesTests {
    /// Sessions use the Config expander: `$$` is a literal `$`, a non-name stays as written.
    @Test func sameRulesAsProfileExpansion() throws {
        let env = ["HOME": "/h"]
        #expect(try SessionEnvironment.expand("$$HOME ${HOME}", from: env) == "$HOME /h")
        #expect(try SessionEnvironment.expand("${not a name}", from: env) == "${not a name}")
        for v in ["a${HOME}b", "${X:-d}", "$", "${", "$$"] {
            #expect(try SessionEnvironment.expand(v, from: env) == (try expandEnvReferences(v, env: env)))
        }
    }
}
