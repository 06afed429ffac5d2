"""The aiohttp service: webhook routes, health, metrics, the session and flow API."""
