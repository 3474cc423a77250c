"""Happy Server emulator for tests."""
