from collections.abc import Callable
from datetime import datetime, timedelta

from django.core.exceptions import ObjectDoesNotExist
from django.db.models import Count, F, Max, Min, Q, QuerySet, Sum, Window
from django.db.models.functions import RowNumber, TruncHour
from django.urls import reverse
from django.utils import timezone
from djmoney.money import Money

from agents.models import DAYS, Agent, Queue
from agents.presence import wrap_up_draft
from calls import charts, kpis
from calls.models import Call, LiveCallCount
from compliance.decisions import LiveCalls
from core.access import Viewer, viewers_of_agents
from messaging.models import Charge, Contact, Conversation, Message

# A call is linked to the caller's chat closed this recently, when none is open (the warm handoff).
CONVERSATION_LINK_WINDOW = timedelta(hours=24)


def queue_is_open(*, queue: Queue, at: datetime) -> bool:
    """Whether the queue takes calls at `at`: no weekly hours means always; holidays are closed."""
    from zoneinfo import ZoneInfo

    local = at.astimezone(ZoneInfo(queue.timezone))
    if local.date().isoformat() in queue.holidays:
        return False
    if not queue.weekly_hours:
        return True
    day, clock = DAYS[local.weekday()], local.strftime("%H:%M")
    return any(
        slot.get("day") == day and slot.get("open", "") <= clock < slot.get("close", "")
        for slot in queue.weekly_hours
    )


def conversations_of_callers(
    *, business_number_id: int, contact_ids: set[int], at: datetime
) -> dict[int, int]:
    """The conversation each caller's call belongs with, by contact id: the caller's open
    conversation with the number, else the one closed most recently within CONVERSATION_LINK_WINDOW
    of `at`. One query (on the conversations' contact index) for many callers."""
    if not contact_ids:
        return {}
    rows = (
        Conversation.objects.filter(business_number_id=business_number_id, contact_id__in=contact_ids)
        .filter(Q(state__in=Conversation.OPEN_STATES) | Q(closed_at__gte=at - CONVERSATION_LINK_WINDOW))
        .order_by("contact_id", F("closed_at").desc(nulls_first=True), "-pk")  # the open one first
        .values_list("contact_id", "pk")
    )
    linked: dict[int, int] = {}
    for contact_id, conversation_id in rows:
        linked.setdefault(contact_id, conversation_id)
    return linked


def ring_frame(*, call: Call, queue: Queue, agent_id: int) -> dict:
    """What the agent's browser shows while the call rings: who, from where, how long they waited,
    and the caller's last call as the agent rung may read it."""
    return ring_frames(offers=[(call, agent_id)], queue=queue)[0]


def ring_frames(*, offers: list[tuple[Call, int]], queue: Queue) -> list[dict]:
    """`ring_frame` of each of many calls of one queue, each for the agent it rings; the callers'
    last calls in one query."""
    now = timezone.now()
    calls = [call for call, _ in offers]
    previous = previous_calls_of(
        contact_ids={call.contact_id for call in calls}, excluded_ids={c.pk for c in calls}
    )
    chats = chats_of(conversation_ids={call.conversation_id for call in calls} - {None})
    viewers = _viewers_of_agents(
        {
            agent_id
            for call, agent_id in offers
            if call.contact_id in previous or call.conversation_id in chats
        }
    )
    return [
        {
            "type": "call.offered",
            "call_id": call.pk,
            "caller_name": call.contact.name,
            "caller_number": f"+{call.contact.wa_id}",
            "country": call.contact.country,
            "queue": queue.name,
            "waited_s": round((now - call.queued_at).total_seconds()) if call.queued_at else 0,
            "ring_timeout_s": queue.ring_timeout_s,
            "cta_payload": call.cta_payload,
            "last_call": (
                last_call_shown(previous[call.contact_id], viewer=viewers[agent_id])
                if call.contact_id in previous
                else None
            ),
            "chat": (
                chat_shown(
                    chats[call.conversation_id], viewer=viewers[agent_id], country=call.contact.country
                )
                if call.conversation_id in chats
                else None
            ),
        }
        for call, agent_id in offers
    ]


def chats_of(*, conversation_ids: set[int]) -> dict[int, Conversation]:
    """Conversations with their leads (if the assistant made one), by id: one query, none for no ids."""
    if not conversation_ids:
        return {}
    return {
        conversation.pk: conversation
        for conversation in Conversation.objects.filter(pk__in=conversation_ids).select_related("lead")
    }


def chat_shown(conversation: Conversation, *, viewer: Viewer, country: str = "") -> dict | None:
    """The chat a call came from as the ring card shows it to `viewer` (the warm handoff): where to
    open it, and what the assistant learnt of the lead, its summary and answers masked unless the
    viewer reads raw text. None when the viewer may not see the conversation (core.access)."""
    from assistant.models import LeadField

    if not viewer.may_see_conversation(conversation):
        return None
    chat = {
        "conversation_id": conversation.pk,
        "url": reverse("messaging:conversation", args=[conversation.pk]),
        "thread_url": reverse("messaging:conversation-thread", args=[conversation.pk]),
        "state": conversation.state,
        "summary": "",
        "fields": [],
        "score": None,
        "sentiment": "",
    }
    try:
        lead = conversation.lead
    except ObjectDoesNotExist:
        return chat
    labels = dict(LeadField.choices)
    fields = lead.fields if isinstance(lead.fields, dict) else {}
    known = [name for name in labels if name in fields]  # the assistant's order, then the rest
    names = known + sorted(name for name in fields if name not in labels)
    return chat | {
        "summary": viewer.text(lead.summary, country=country)[:600],
        "fields": [
            {
                "name": name,
                "label": labels.get(name, name.replace("_", " ").capitalize()),
                "value": viewer.text(str(fields[name]), country=country)[:200],
            }
            for name in names
            if fields[name] not in ("", None)
        ],
        "score": lead.score,
        "sentiment": lead.sentiment,
    }


def resume_frames_for_agent(*, agent_id: int) -> list[dict]:
    """What a tab of the agent that (re)connects must show: the call ringing the agent (with the
    ring time left), the call the agent is on, or the ended call the agent is filing."""
    now = timezone.now()
    live = (
        Call.objects.filter(
            Q(status=Call.Status.OFFERED, offered_to_id=agent_id)
            | Q(status=Call.Status.CONNECTED, agent_id=agent_id)
            | Q(
                direction=Call.Direction.OUTBOUND,
                status__in=[Call.Status.DIALING, Call.Status.RINGING],
                agent_id=agent_id,
            )
        )
        .select_related("contact", "queue")
        .first()
    )
    if live is not None and live.status == Call.Status.OFFERED and live.queue is not None:
        frame = ring_frame(call=live, queue=live.queue, agent_id=agent_id)
        if live.offer_expires_at is not None:
            frame["ring_timeout_s"] = max(0, round((live.offer_expires_at - now).total_seconds()))
        return [frame]
    if live is not None and live.status in (Call.Status.DIALING, Call.Status.RINGING):
        # A call the agent placed that has not been picked up yet: shown as just placed.
        return [
            {
                "type": "call.dial.result",
                "is_placed": True,
                "call_id": live.pk,
                "customer": str(live.contact),
                "customer_number": f"+{live.contact.wa_id}",
                "business_number_id": live.business_number_id,
            }
        ]
    if live is not None and live.status == Call.Status.CONNECTED:
        contact = live.contact
        chats = chats_of(conversation_ids={live.conversation_id} - {None})
        chat = None
        if chats:
            viewer = _viewers_of_agents({agent_id})[agent_id]
            chat = chat_shown(chats[live.conversation_id], viewer=viewer, country=contact.country)
        return [
            {
                "type": "call.resume",
                "call_id": live.pk,
                "caller": contact.name or f"+{contact.wa_id}",
                "connected_at": live.connected_at.isoformat() if live.connected_at else now.isoformat(),
                "chat": chat,
            }
        ]
    call_id = call_to_file(agent_id=agent_id)
    if call_id is not None:
        # In wrap-up, or with a draft kept from a wrap-up left unfiled (every tab had closed): the
        # form comes back with what the agent had typed.
        draft = wrap_up_draft(agent_id=agent_id, call_id=call_id)
        if draft is not None or Agent.objects.filter(pk=agent_id, status=Agent.Status.WRAP_UP).exists():
            return [
                {
                    "type": "call.ended",
                    "call_id": call_id,
                    "agent_id": agent_id,
                    "dispositions": Call.Disposition.choices,
                    "draft": draft,
                }
            ]
    return []


def call_to_file(*, agent_id: int) -> int | None:
    """The id of the agent's last call if it has ended and is not filed yet, else None."""
    last = (
        Call.objects.filter(agent_id=agent_id, status=Call.Status.ENDED)
        .order_by(F("ended_at").desc(nulls_last=True), "-pk")
        .values_list("pk", "disposition")
        .first()
    )
    return last[0] if last is not None and last[1] == "" else None


def previous_calls_of(*, contact_ids: set[int], excluded_ids: set[int] = frozenset()) -> dict[int, Call]:
    """The newest call that reached an agent of each of many contacts, by contact id, in one query
    (a window) after a first, plain one for which of them called before: a burst of first-time
    callers costs that first query only."""
    answered = Call.objects.filter(status=Call.Status.ENDED, agent__isnull=False).exclude(pk__in=excluded_ids)
    callers_before = set(
        answered.filter(contact_id__in=contact_ids).order_by().values_list("contact_id", flat=True).distinct()
    )
    if not callers_before:
        return {}
    newest_first = [F("ended_at").desc(nulls_last=True), F("pk").desc()]
    previous = (
        answered.filter(contact_id__in=callers_before)
        .annotate(rank=Window(RowNumber(), partition_by=F("contact_id"), order_by=newest_first))
        .filter(rank=1)
        .select_related("agent__user", "summary", "contact")
    )
    return {call.contact_id: call for call in previous}


def last_call_shown(call: Call, *, viewer: Viewer) -> dict:
    """A caller's previous call as the ring toast shows it to `viewer`: the agent's notes only when
    the viewer may read them (core.access), notes and summary masked unless they read raw text."""
    return {
        "ended_at": call.ended_at.isoformat() if call.ended_at else None,
        "agent": call.agent.name,
        "outcome": call.get_disposition_display() if call.disposition else call.get_end_reason_display(),
        "notes": viewer.notes_of(call)[:200],
        "summary": _summary_shown(call, viewer=viewer),
    }


def _summary_shown(call: Call, *, viewer: Viewer) -> str:
    """The call's summary as the viewer may read it (personal data masked unless raw), or ""."""
    try:
        summary = call.summary
    except ObjectDoesNotExist:
        return ""
    return viewer.text(summary.paragraph, country=call.contact.country)[:600]


def _viewers_of_agents(agent_ids: set[int]) -> dict[int, Viewer]:
    """What each agent sees (core.access), by agent id: a few queries however many agents."""
    return viewers_of_agents(agent_ids) if agent_ids else {}


def agents_in_wrap_up() -> list[tuple[int, int]]:
    """(agent id, wrap-up seconds) of agents in wrap-up: the longest wrap-up of their queues."""
    return [
        (agent_id, wrap_up_s if wrap_up_s is not None else 0)
        for agent_id, wrap_up_s in Agent.objects.filter(status=Agent.Status.WRAP_UP)
        .annotate(wrap_up=Max("memberships__queue__wrap_up_s"))
        .values_list("pk", "wrap_up")
    ]


def live_media_channels() -> set[str]:
    """Channels of the media processes whose heartbeat is fresh (calls.media keeps it)."""
    return set(media_heartbeats())


def media_heartbeats() -> dict[str, dict]:
    """What each media process with a fresh heartbeat reports of itself (calls.media: the calls it
    holds, its CPU seconds), by its channel; {} for a report that cannot be read."""
    import json

    import redis
    from django.conf import settings

    from calls.media import HEARTBEAT_KEY_PREFIX

    client = redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=2, socket_timeout=2)
    try:
        keys = list(client.scan_iter(f"{HEARTBEAT_KEY_PREFIX}*"))
        values = client.mget(keys) if keys else []
    finally:
        client.close()
    heartbeats = {}
    for key, value in zip(keys, values, strict=True):
        try:
            reported = json.loads(value) if value else {}
        except ValueError:
            reported = {}
        heartbeats[key.decode()[len(HEARTBEAT_KEY_PREFIX) :]] = reported if isinstance(reported, dict) else {}
    return heartbeats


# What other apps add to the wallboard's snapshot (the work after calls, from recordings): each a
# function of the snapshot's time giving its part, by name. The calls app imports none of them.
_wallboard_parts: list[Callable[[datetime], dict]] = []


def wallboard_part_register(part: Callable[[datetime], dict]) -> None:
    if part not in _wallboard_parts:
        _wallboard_parts.append(part)


def wallboard_snapshot(*, with_charts: bool = False) -> dict:
    """The floor right now: per queue the waiting calls and the longest wait, and agents by state,
    with the parts other apps add (`wallboard_part_register`); `with_charts`: the charts of the day
    too (calls.charts), as SVG markup."""
    now = timezone.now()
    queues = []
    for queue in Queue.objects.annotate(
        waiting=Count("calls", filter=Q(calls__status=Call.Status.QUEUED)),
        ringing=Count("calls", filter=Q(calls__status=Call.Status.OFFERED)),
        talking=Count("calls", filter=Q(calls__status=Call.Status.CONNECTED)),
        oldest_queued_at=Min(
            "calls__queued_at", filter=Q(calls__status__in=[Call.Status.QUEUED, Call.Status.OFFERED])
        ),
    ).order_by("name"):
        longest_wait_s = (
            round((now - queue.oldest_queued_at).total_seconds()) if queue.oldest_queued_at else 0
        )
        queues.append(
            {
                "id": queue.pk,
                "name": queue.name,
                "waiting": queue.waiting,
                "ringing": queue.ringing,
                "talking": queue.talking,
                "longest_wait_s": longest_wait_s,
            }
        )
    by_status = dict(
        Agent.objects.values_list("status").annotate(count=Count("pk")).values_list("status", "count")
    )
    agents = [
        {"status": status, "label": label, "count": by_status.get(status, 0)}
        for status, label in Agent.Status.choices
    ]
    snapshot = {"type": "wallboard.snapshot", "at": now.isoformat(), "queues": queues, "agents": agents}
    for part in _wallboard_parts:
        snapshot.update(part(now))
    if with_charts:
        snapshot["charts"] = wallboard_charts(at=now)
        for queue in queues:  # for the page's first drawing; the socket's frames carry charts.queues
            queue["service_level_today"] = snapshot["charts"]["queues"].get(str(queue["id"]), "no calls")
    return snapshot


def wallboard_charts(*, at: datetime) -> dict:
    """The charts of the day `at` falls in (the deployment's time zone), as SVG markup, and the
    service level of the day, overall and by queue, as the wallboard shows them."""
    day_start, day_end = kpis.local_day(day=timezone.localdate(at))
    hours = day_hours(since=day_start, until=day_end)
    goal = kpis.SERVICE_LEVEL_GOAL
    by_queue = kpis.service_level_by_queue(since=day_start, until=day_end)
    day = kpis.ServiceLevel(  # the queues' together (calls of no queue count for none)
        answered_within_target=sum(level.answered_within_target for level in by_queue.values()),
        calls=sum(level.calls for level in by_queue.values()),
    )
    return {
        "queues": {
            str(queue_id): "no calls" if level.value is None else f"{level.value:.0%}"
            for queue_id, level in by_queue.items()
            if queue_id is not None
        },
        "service_level_text": "no calls yet" if day.value is None else f"{day.value:.0%}",
        "calls_svg": charts.calls_per_hour_svg(hours),
        "service_level_svg": charts.service_level_svg(hours, goal=goal),
        "sentiment_svg": charts.sentiment_svg(sentiment_mix(since=day_start, until=day_end)),
    }


def day_hours(*, since: datetime, until: datetime) -> list[charts.Hour]:
    """The inbound calls that reached a queue and started in each hour of the day [since, until), by
    how they went (answered by an agent, abandoned by the caller, otherwise: still waiting, no
    agent, failed), with each hour's service level (calls.kpis: the same calls, the same rules)."""

    zone = timezone.get_current_timezone()
    rows = (
        Call.objects.filter(kpis.REACHED_QUEUE, started_at__gte=since, started_at__lt=until)
        .annotate(hour=TruncHour("started_at", tzinfo=zone))
        .values("hour")
        .annotate(
            answered=Count("pk", filter=kpis.ANSWERED),
            abandoned=Count("pk", filter=kpis.ABANDONED),
            reached=Count("pk"),
        )
        .order_by()
    )
    counts: dict[int, dict[str, int]] = {}
    for row in rows:  # the two hours of a night the clocks go back are one
        hour = counts.setdefault(timezone.localtime(row["hour"], zone).hour, dict.fromkeys(row, 0))
        for name in ("answered", "abandoned", "reached"):
            hour[name] += row[name]
    levels = kpis.service_level_by_hour(since=since, until=until)
    hours = []
    for hour in range(24):
        row = counts.get(hour, {"answered": 0, "abandoned": 0, "reached": 0})
        hours.append(
            charts.Hour(
                hour=hour,
                answered=row["answered"],
                abandoned=row["abandoned"],
                other=row["reached"] - row["answered"] - row["abandoned"],
                service_level=levels.get(hour),
            )
        )
    return hours


def sentiment_mix(*, since: datetime, until: datetime) -> dict[str, int]:
    """How many of the calls that started in [since, until) and had a conversation (an agent took
    them) were summarised positive, neutral or negative (the customer's side). A call nobody
    answered counts for none, whatever its summary says: its recording, if any, held only the
    queue's notice and hold audio."""
    rows = (
        Call.objects.filter(
            kpis.HAD_CONVERSATION,
            started_at__gte=since,
            started_at__lt=until,
            summary__sentiment__in=["positive", "neutral", "negative"],
        )
        .values("summary__sentiment")
        .annotate(count=Count("pk"))
        .order_by()
    )
    return {row["summary__sentiment"]: row["count"] for row in rows}


def live_calls_for_compliance(business_number_id: int, contact_id: int) -> LiveCalls:
    """What the compliance engine asks before a business call: the number's live outbound calls
    and whether a call of the number with the customer is live (Meta refuses a second: 138003)."""
    outbound = (
        LiveCallCount.objects.filter(business_number_id=business_number_id, direction=Call.Direction.OUTBOUND)
        .values_list("live", flat=True)
        .first()
    )
    with_contact = Call.objects.filter(
        business_number_id=business_number_id, contact_id=contact_id, status__in=Call.LIVE_STATUSES
    ).exists()
    return LiveCalls(outbound=outbound or 0, with_contact=with_contact)


def contacts_matching(*, viewer: Viewer, text: str, limit: int = 50) -> QuerySet[Contact]:
    """The viewer's contacts whose name or number contains `text` (all when empty), latest call on
    the viewer's numbers first."""
    contacts = Contact.objects.filter(
        pk__in=contacts_with_text(viewer=viewer, text=text).values("pk")
    ).annotate(
        last_call_at=Max("calls__started_at", filter=Q(calls__business_number_id__in=viewer.number_ids))
    )
    return contacts.order_by(F("last_call_at").desc(nulls_last=True), "name", "wa_id")[:limit]


def contacts_with_text(*, viewer: Viewer, text: str) -> QuerySet[Contact]:
    """The viewer's contacts whose name has `text`, or whose number has its digits (all when empty):
    the contacts page's search, and the filter a campaign's list can be."""
    contacts = viewer.contacts()
    text = text.strip()
    if text:
        contacts = contacts.filter(
            Q(name__icontains=text) | Q(wa_id__contains=text.lstrip("+").replace(" ", ""))
        )
    return contacts


def customer_cost(*, contact_id: int, business_number_id: int) -> list[Money]:
    """What the customer has cost the business on the number so far: the charges of the messages sent
    to them and of the calls with them, a sum per currency (Meta bills each account in one; an
    account moved to another currency has two). Unpriced charges count as nothing."""
    messages = Message.objects.filter(contact_id=contact_id, wa_message_id__isnull=False)
    calls = Call.objects.filter(contact_id=contact_id)
    charges = Charge.objects.filter(business_number_id=business_number_id, amount__isnull=False).filter(
        Q(kind=Charge.Kind.MESSAGE, reference__in=messages.values("wa_message_id"))
        | Q(kind=Charge.Kind.CALL, reference__in=calls.values("wa_call_id"))
    )
    totals = charges.values("amount_currency").annotate(total=Sum("amount")).order_by("amount_currency")
    return [Money(row["total"], row["amount_currency"]) for row in totals]


def calls_of_contact(*, contact_id: int, viewer: Viewer, limit: int = 20) -> QuerySet[Call]:
    """The contact's latest calls on the viewer's numbers, either way, with who took them."""
    return (
        Call.objects.filter(contact_id=contact_id, business_number_id__in=viewer.number_ids)
        .select_related("agent__user", "business_number", "contact")
        .order_by("-started_at", "-pk")[:limit]
    )
