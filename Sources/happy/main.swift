import HappyCommands
#if canImport(Glibc)
import Glibc
#endif

// Synchronous on purpose: no top-level `await`, so `--version`, `--help`, `profile`,
// `completions` and usage errors never start the concurrency runtime. Commands that need
// it (AsyncCommand) run on a task while this thread waits (CLI.main).
exit(CLI.main(arguments: Array(CommandLine.arguments.dropFirst())))
