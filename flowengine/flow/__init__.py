"""The flow language: YAML with positions, schema, semantic rules, the frozen Flow model."""
