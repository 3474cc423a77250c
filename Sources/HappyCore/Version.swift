public enum HappyVersion {
    /// The one version string: `happy --version`, the daemon state file, machine
    /// metadata (`happyCliVersion`), session metadata (`version`), `GET /health`, and
    /// `X-Happy-Client` values. Semver ≥ 0.10.0: the app flags lower versions in session
    /// metadata as an outdated CLI (SPEC §7.2).
    public static let current = "0.11.0"
}
