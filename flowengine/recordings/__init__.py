"""Record and replay: a session's real traffic (webhooks and API requests in, commands and the platform's
answers out) kept as a redacted replay file, and played back against a flow to find where its commands
diverge. ``redact`` and ``fileformat`` are what the recording side (``server.recording``) writes with;
``replayer`` and ``report`` are what ``flowengine replay`` runs."""
