"""Scenarios: a flow's calls played against a simulated platform, in virtual time, over real HTTP."""
