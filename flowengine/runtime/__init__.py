"""The pure core: compiled flows, sessions, neutral events and commands. No I/O here."""
