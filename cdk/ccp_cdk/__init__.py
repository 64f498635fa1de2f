"""The ClaudeCodeProxy AWS deployment: network, secrets, database, compute and monitoring."""
