"""Contact-centre KPIs for a period [since, until), counted by the database (selectors).

Which calls a period holds: **a call belongs to the period in which it started** (`started_at`,
Meta's first webhook; an inbound call joins its queue at that same moment, `queued_at`). A call
that spans midnight counts, with everything about it (its wait, its talk, its hold, its wrap-up,
its offers to agents, its charge), on the day it started, even the parts that happened after
midnight. Agents' time (occupancy) is different: it is time, so it is clipped to the period (a
status that began before `since` or lasted past `until` counts only its part inside).

A figure whose denominator is empty is None (no calls, no offers, no time signed in), never 0.

Inbound calls in a queue (`CallFigures`, per queue and in total):

- **reached a queue** (`calls_queued`): an inbound call with a `queued_at`. Calls refused before
  (capacity, closed, no queue serves the number) never reached one: they are `rejected`.
- **wait**: `queued_at` → `connected_at` (answered by an agent), or → `ended_at` (the caller left
  or the call ended otherwise).
- **answered**: connected to an agent. **abandoned**: the caller hung up while queued or while an
  agent's phone rang (`abandoned`, never connected). **short abandon**: an abandon after a wait
  shorter than `short_abandon_s` (default 5 s): a caller who changed their mind, not one we lost;
  left out of both rates below. **no_agent**: ended at the queue's maximum wait: no agent took it,
  the worst service, so it counts against the service level and is not an abandon.
  **failed**: ended by a failure before an agent answered (media or Meta error): a technical
  fault, not a service outcome, so it is left out of both rates (and counted on its own).
  **waiting**: still queued or ringing an agent now: no outcome yet, left out of both rates.
- **service level X/Y** = answered within `answer_within_s` (Y, default 20 s; a wait of exactly Y
  is within) / (answered + abandoned + no_agent). X (`goal_percent`, default 80) is the goal the
  figure is read against.
- **abandonment rate** = abandoned / (answered + abandoned + no_agent): abandons, short ones left
  out, over the calls that reached a queue less short abandons, failures and calls still waiting.
- **ASA** (average speed of answer) = average wait of the answered calls.
- **longest wait**: the longest wait of any call that reached a queue (a call still waiting: so far).

Handled calls, either direction (a business-initiated call has no queue):

- **handled**: a call connected to an agent that has ended.
- **talk** = connected time less hold (`talk_seconds` - `hold_seconds`; `talk_seconds` runs from
  the agent's answer, or the customer's pick-up, to the end). **hold**: `hold_seconds`, recorded
  from the softphone's hold switch (calls.services.call_hold_set).
- **wrap-up** (after-call work) of a call: the agent's status `wrap_up` that began when the call
  ended, up to the agent's next status change, whatever it is (available, away, offline, or
  on_call because they placed a call from wrap-up). It is computed from the agents' status history
  (AgentStatusEvent), not stored on the call: every way a wrap-up ends (filing the call, the
  wrap-up timer, the sweep, a presence change, placing a call, the dashboard closing) already
  writes that history, so no path can be missed. A wrap-up still running counts up to now.
- **AHT** (average handle time) = average of talk + hold + wrap-up over handled calls.

Agents (`AgentFigures`):

- **signed in** = time in available + ringing + on_call + wrap_up (away and offline are not).
  **busy** = ringing + on_call + wrap_up: a ringing agent cannot take another call either, and a
  missed offer costs the agent that time. **occupancy** = busy / signed in. Time before an agent's
  first recorded status change counts as offline.
- **offers**: calls rung on the agent (CallEvent queued → offered). **accepted**: offered →
  connected by the agent. **missed**: offered → queued by the agent: **declined**, or **rang out**.
  Offers withdrawn because the caller hung up while it rang are neither. **answer rate** =
  accepted / (accepted + missed).

WhatsApp (`WhatsAppFigures`), per business number (a queue's figures use the queue's numbers):

- **permission grant rate** = requests sent in the period whose first answer, before any later
  request to the same customer, was a grant (by tapping Allow or by calling in; at any time so far,
  so a recent period's rate can still rise) / requests sent in the period.
- **revocations**: permissions lost in the period other than by expiry: revoked after unanswered
  calls, revoked by Meta's refusal (138006), or withdrawn by the customer after granting it.
- **outbound answer rate** = business-initiated calls that connected / those placed (calls still
  dialling or ringing now are left out).
- **cost per connected minute**, per currency: the priced call charges of the period's calls over
  their connected minutes (inbound calls are free and priced at 0, so they lower it). Charges not
  priced yet are left out of both and reported (count and seconds), never counted as free.
"""

from calls.kpis.agents import agent_call_figures, agent_status_seconds
from calls.kpis.base import (
    DEFAULT_TARGETS,
    AgentFigures,
    AgentRow,
    CallCost,
    CallFigures,
    Kpis,
    QueueRow,
    Targets,
    WhatsAppFigures,
    local_day,
    today_in,
)
from calls.kpis.queues import (
    ABANDONED,
    ANSWERED,
    HAD_CONVERSATION,
    REACHED_QUEUE,
    SERVICE_LEVEL_GOAL,
    ServiceLevel,
    call_figures_by_queue,
    calls_of_period,
    service_level,
    service_level_by_hour,
    service_level_by_queue,
)
from calls.kpis.report import (
    agent_figures_row,
    call_figures_row,
    kpis_of_period,
    kpis_table,
    whatsapp_figures_row,
)
from calls.kpis.whatsapp import whatsapp_figures

__all__ = [
    "ABANDONED", "ANSWERED", "DEFAULT_TARGETS", "HAD_CONVERSATION", "REACHED_QUEUE", "SERVICE_LEVEL_GOAL",
    "AgentFigures", "AgentRow", "CallCost", "CallFigures", "Kpis", "QueueRow", "ServiceLevel", "Targets",
    "WhatsAppFigures", "agent_call_figures", "agent_figures_row", "agent_status_seconds",
    "call_figures_by_queue", "call_figures_row", "calls_of_period", "kpis_of_period", "kpis_table",
    "local_day", "service_level", "service_level_by_hour", "service_level_by_queue", "today_in",
    "whatsapp_figures", "whatsapp_figures_row",
]  # fmt: skip
