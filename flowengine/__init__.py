"""flowengine: declarative YAML call flows for CPaaS voice platforms."""

__version__ = "0.1.0"
