public enum HappyVersion {
    /// The one version string: `happy --version`, the daemon state file, machine
    /// metadata (`happyCliVersion`), `GET /health`, and `X-Happy-Client` values.
    public static let current = "0.1.0"
}
