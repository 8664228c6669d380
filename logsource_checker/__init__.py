"""logsource_checker: which logs must be switched on for a set of Sigma rules, and what must change."""

__version__ = "0.1.0"
