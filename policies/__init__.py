"""Safety policies. Each is a small class with one ``check`` returning a Verdict."""
