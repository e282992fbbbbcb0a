"""The contract every layer shares: the artifact schema and its verification, the
preprocessing definition, the error types and exit codes, the capability tables, and the
comparator. Imports nothing above it; numpy is its only heavy dependency."""
