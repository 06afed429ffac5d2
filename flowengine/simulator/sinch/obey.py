"""Carrying out SVAML on a Sinch call: instructions in order (say and playFiles take time), then the
action: hangup, continue, connectConf, connectPstn (a bridged leg to a scripted party), runMenu (DTMF from
the party's script, reported with PIE) and park."""

from __future__ import annotations

import re
from typing import Any

from flowengine.simulator.legs import Leg, run_dial, start_party
from flowengine.simulator.parties import DialOutcome, plan_dial
from flowengine.simulator.sinch import callbacks
from flowengine.simulator.sinch.calls import SinchCalls
from flowengine.simulator.sinch.conference_dtmf import read_options
from flowengine.simulator.sinch.model import (
    ANSWERED,
    BUSY,
    CALLBACKERROR,
    CALLEEHANGUP,
    FAILED,
    MANAGERHANGUP,
    NOANSWER,
    SinchCall,
)
from flowengine.simulator.sinch.svaml import Svaml, instruction_seconds, prompt_seconds

# DiCE result of each way a dial can fail.
DIAL_RESULTS = {
    DialOutcome.NO_ANSWER: NOANSWER,
    DialOutcome.BUSY: BUSY,
    DialOutcome.REJECTED: BUSY,  # a declined PSTN call signals busy
    DialOutcome.UNREACHABLE: FAILED,
}
# Bounds menu(...) hops so a menu that loops onto itself cannot run forever.
MAX_MENU_HOPS = 16
_OPTION = re.compile(r"^(return|menu)(?:\((.*)\))?$")


class SinchObey(SinchCalls):
    """SVAML semantics on top of the call lifecycle."""

    callout_ring_timeout: float
    park_max_duration: float

    async def obey(self, call: SinchCall, svaml: Svaml) -> None:
        for step in svaml.instructions:
            if call.ended:
                return
            await self.instruction(call, step)
        if not call.ended:
            await self._action(call, svaml.action)

    async def instruction(self, call: SinchCall, step: dict[str, Any]) -> None:
        name = step["name"]
        if name == "answer":
            self.answer(call)
        elif name == "setCookie":
            call.cookies[step["key"]] = step["value"]
        elif name == "startRecording":
            call.recording = True
            options = step.get("options")
            call.recording_options = options if isinstance(options, dict) else {}
        elif name == "stopRecording":
            self.finish_recording(call)
        seconds = instruction_seconds(step)
        if seconds > 0:
            await self.clock.sleep(seconds)

    async def _action(self, call: SinchCall, action: dict[str, Any]) -> None:
        name = action["name"]
        if name == "hangup":
            self.hang_up(call, MANAGERHANGUP)
        elif name == "connectConf":
            dtmf = read_options(action.get("conferenceDtmfOptions"))  # checked with the SVAML
            self.join_conference(call, action["conferenceId"], action.get("moh"), dtmf)
        elif name == "connectPstn":
            await self._connect_pstn(call, action)
        elif name == "runMenu":
            await self._run_menu(call, action)
        elif name == "park":
            await self._park(call, action)
        # "continue": the call carries on as it was

    async def ask_ace(self, call: SinchCall) -> Svaml:
        """ACE for an answered call; its reply is obeyed by the caller of this method."""
        svaml = await self.ask(call, callbacks.ace(call, self.clock.now(), self.application_key), "ace")
        assert svaml is not None  # an ACE always falls back to continue
        return svaml

    async def _connect_pstn(self, call: SinchCall, action: dict[str, Any]) -> None:
        """Bridge a new leg to ``number``; the dialled party's script decides how it goes."""
        number = str(action["number"])
        script = self.parties.script_for(number)
        timeout = float(action.get("dialTimeout") or self.callout_ring_timeout)
        outcome = await run_dial(self.clock, plan_dial(script, timeout), lambda: None)
        if outcome is not DialOutcome.ANSWERED:
            self.dial_failed(call, DIAL_RESULTS[outcome])
            return
        self.answer(call)
        call.bridge = Leg(id=f"{call.id}-callee", remote=number, script=script)
        start_party(self.clock, call.bridge, lambda: self.end_call(call, ANSWERED, CALLEEHANGUP))
        if call.ace and not action.get("suppressCallbacks"):
            await self.obey(call, await self.ask_ace(call))

    async def _park(self, call: SinchCall, action: dict[str, Any]) -> None:
        """Answer, play the intro, hold until a PATCH replaces this or ``maxDuration`` passes."""
        self.answer(call)
        await self.clock.sleep(prompt_seconds(action.get("introPrompt")))
        await self.clock.sleep(float(action.get("maxDuration") or self.park_max_duration))
        self.hang_up(call, MANAGERHANGUP)

    async def _run_menu(self, call: SinchCall, action: dict[str, Any]) -> None:
        self.answer(call)
        menus = {str(menu["id"]): menu for menu in action["menus"]}
        current = str(action.get("mainMenu") or action["menus"][0]["id"])
        result = await self._menu_result(call, menus, current)
        body = callbacks.pie(call, self.clock.now(), self.application_key, result)
        svaml = await self.ask(call, body, "pie")
        if svaml is None:
            self.hang_up(call, CALLBACKERROR)
            return
        await self.obey(call, svaml)

    async def _menu_result(
        self, call: SinchCall, menus: dict[str, dict[str, Any]], current: str
    ) -> dict[str, Any]:
        """Walk the menus with the party's digits until something is returned: PIE's ``menuResult``."""
        kind, value = "error", "menu loop"
        for _ in range(MAX_MENU_HOPS):
            menu = menus.get(current)
            if menu is None:
                kind, value = "error", f"unknown menu {current}"
                break
            kind, value = await self._ask_menu(call, menu)
            if kind != "option":
                break
            match = _OPTION.match(value)
            if match is None:
                kind = "error"  # an option action that is neither return(...) nor menu(...)
                break
            if match.group(1) == "menu":
                current = match.group(2) or current
                continue
            kind, value = "return", match.group(2) or ""
            break
        return {"menuId": current, "type": kind, "value": value, "inputMethod": "dtmf"}

    async def _ask_menu(self, call: SinchCall, menu: dict[str, Any]) -> tuple[str, str]:
        """Prompt and collect, repeating as the menu says: ("option", option action) / ("sequence",
        digits) / ("invalidinput", digits) / ("timeout", ""). ``#`` ends the keys early (and only it)."""
        options = {
            str(o["dtmf"]): str(o.get("action", "return"))
            for o in menu.get("options") or []
            if isinstance(o, dict) and "dtmf" in o
        }
        max_digits = max((len(k) for k in options), default=int(menu.get("maxDigits") or 1))
        timeout = float(menu.get("timeoutMills") or 5000) / 1000
        invalid = ""
        for attempt in range(1 + int(menu.get("repeats", 3))):
            prompt = (
                menu.get("mainPrompt") if attempt == 0 else menu.get("repeatPrompt", menu.get("mainPrompt"))
            )
            await self.clock.sleep(prompt_seconds(prompt))
            got = await call.dtmf.collect(self.clock, max_digits=max_digits, timeout=timeout, terminator="#")
            if not got.digits:
                continue
            if not options:
                return "sequence", got.digits
            if got.digits in options:
                action = options[got.digits]
                return ("option", action) if action != "return" else ("return", got.digits)
            invalid = got.digits
        return ("invalidinput", invalid) if invalid else ("timeout", "")
