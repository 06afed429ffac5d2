"""The Sinch Calling API (v1) simulator."""

from flowengine.simulator.sinch.simulator import SinchSimulator

__all__ = ["SinchSimulator"]
