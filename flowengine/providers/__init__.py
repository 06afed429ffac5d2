"""Provider adapters: each platform's webhooks -> neutral events, neutral commands -> its API."""
