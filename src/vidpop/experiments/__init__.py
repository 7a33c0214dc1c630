"""End-to-end workflows that produce the tables of the README and the issues (library code behind CLI commands)."""
