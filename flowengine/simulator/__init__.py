"""Wire-faithful local copies of the voice platforms (Infobip Calls API, Sinch Calling API), with
scripted remote parties and time taken from a ``Clock`` so a ``VirtualClock`` runs them fast."""

from flowengine.simulator.base import ApiError, Faults, RecordedRequest, Simulator
from flowengine.simulator.clock import ScaledClock
from flowengine.simulator.delivery import DeliveredEvent, DeliveryPolicy, WebhookSender
from flowengine.simulator.infobip import InfobipSimulator
from flowengine.simulator.parties import PartyBook, PartyScript
from flowengine.simulator.serve import build_simulator, run_simulator, serve_simulator
from flowengine.simulator.sinch import SinchSimulator

__all__ = [
    "ApiError",
    "DeliveredEvent",
    "DeliveryPolicy",
    "Faults",
    "InfobipSimulator",
    "PartyBook",
    "PartyScript",
    "RecordedRequest",
    "ScaledClock",
    "Simulator",
    "SinchSimulator",
    "WebhookSender",
    "build_simulator",
    "run_simulator",
    "serve_simulator",
]
