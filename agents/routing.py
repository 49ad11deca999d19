"""The ACD's matching, in one place: which members of a queue can take a piece of work now, best
first, and the claim of one of them. Calls (calls.routing) and conversations
(messaging.conversations) are the two kinds of work it routes.

An agent's capacity: a call takes the agent whole (ringing, then on the call, then wrap-up), and
is offered to any available agent, whatever chats the agent holds (a call does not wait for
chats). A chat takes one of the agent's places up to the agent's chat limit, and only while the
agent is available: no new chat while a call rings, is live or in wrap-up, or while away.

`can_take` is that rule as a filter: routing chooses with it, and each claim is one conditional
UPDATE under it, so what was chosen is claimed only if it still holds (row count 1).
"""

import enum
from collections.abc import Iterable
from dataclasses import dataclass

from django.db.models import Count, F, Q, QuerySet
from django.utils import timezone

from agents.models import Agent, Queue
from agents.services import agent_transition

MAX_CANDIDATES = 25  # agents tried per claim before giving up on this round


class Work(enum.StrEnum):
    CALL = "call"
    CHAT = "chat"


def can_take(work: Work) -> Q:
    """The agents who can take `work` now."""
    if work == Work.CALL:
        return Q(status=Agent.Status.AVAILABLE)
    return Q(status=Agent.Status.AVAILABLE, chat_count__lt=F("chat_limit"))


@dataclass(frozen=True)
class Capacity:
    """How much more work an agent can take now: a call or not, and how many chats."""

    calls: int
    chats: int


def capacity_of(agent: Agent) -> Capacity:
    """`can_take` read off an agent row (for what a page shows or a refusal says)."""
    if agent.status != Agent.Status.AVAILABLE:
        return Capacity(calls=0, chats=0)
    return Capacity(calls=1, chats=max(agent.chat_limit - agent.chat_count, 0))


def free_agents(queue: Queue, *, work: Work) -> QuerySet[Agent]:
    """Members who can take the queue's `work` now and have its required skills, best first: tier,
    then (for a chat) fewest chats held, then the queue's strategy."""
    agents = Agent.objects.filter(can_take(work), memberships__queue=queue)
    required = list(queue.required_skills.values_list("pk", flat=True))
    if required:
        agents = agents.annotate(
            matching_skills=Count("skills", filter=Q(skills__in=required), distinct=True)
        ).filter(matching_skills=len(required))
    order = [F("chat_count").asc()] if work == Work.CHAT else []
    if queue.strategy == Queue.Strategy.ROUND_ROBIN:
        order.append(F("last_offered_at").asc(nulls_first=True))
    else:
        order.append(F("status_changed_at").asc())  # longest idle: available for the longest time
    return agents.order_by("memberships__priority", *order, "pk")


def agent_claim_best(
    *, queue: Queue, work: Work, excluded: Iterable[int] = (), preferred: int | None = None
) -> int | None:
    """Claim the best free member of the queue for `work` (one conditional UPDATE per candidate
    tried, up to MAX_CANDIDATES): the agent's id, or None when nobody could take it.

    `preferred` (the agent chatting with the caller) is tried first when they are a free member
    who may take it now; otherwise the queue's order decides."""
    excluded = list(excluded)
    candidates = free_agents(queue, work=work).exclude(pk__in=excluded)
    agent_ids = list(candidates.values_list("pk", flat=True)[:MAX_CANDIDATES])
    if preferred is not None and preferred not in excluded:
        if preferred in agent_ids:
            agent_ids.remove(preferred)
            agent_ids.insert(0, preferred)
        elif candidates.filter(pk=preferred).exists():  # free, but beyond the first candidates
            agent_ids.insert(0, preferred)
    for agent_id in agent_ids:
        if agent_claim(agent_id=agent_id, work=work):
            return agent_id
    return None


def agent_claim(*, agent_id: int, work: Work) -> bool:
    """Give the agent `work` if the agent can still take it: one conditional UPDATE; whether it won.

    A call rings the agent (available → ringing, with its status event and presence pushed after
    commit); a chat takes one of the agent's chat places. Both count as work offered for round
    robin.
    """
    now = timezone.now()
    if work == Work.CALL:
        return agent_transition(
            agent_id=agent_id,
            allowed_from={Agent.Status.AVAILABLE},
            to_status=Agent.Status.RINGING,
            last_offered_at=now,
        )
    taken = Agent.objects.filter(can_take(work), pk=agent_id).update(
        chat_count=F("chat_count") + 1, last_offered_at=now, updated_at=now
    )
    return taken == 1


def agent_chat_release(*, agent_id: int) -> bool:
    """One of the agent's chats ended or went elsewhere: its place is free again (whatever the
    agent's status). Whether there was one to free."""
    released = Agent.objects.filter(pk=agent_id, chat_count__gt=0).update(
        chat_count=F("chat_count") - 1, updated_at=timezone.now()
    )
    return released == 1
