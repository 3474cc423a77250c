import HappyKit

// Placeholder until the CLI command tree lands (issue 2).
print("happy \(HappyVersion.current)")
