"""The Infobip Calls API simulator."""

from flowengine.simulator.infobip.simulator import InfobipSimulator

__all__ = ["InfobipSimulator"]
