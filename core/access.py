"""Who may see what: the one rule every page, admin page, API view, socket and export asks.

Three kinds of viewer look at the contact center's data:

- **an agent** (a signed-in user with an agent profile, not staff) sees the contacts of the business
  numbers they serve (those of their queues), their own calls, the chat thread of a call they were
  rung for or took (read beside the call), and no other agent's wrap-up notes (nor colleagues'
  private notes on conversations) unless they hold `calls.read_colleagues_notes`, and not the
  floor's figures (KPIs) unless they hold `calls.view_kpis`;
- **a supervisor** (a staff user) sees everything of every number: every call when they may listen to
  calls (`recordings.listen_recording`), every agent's notes, and runs campaigns (agents do not);
- **an API key** sees its numbers only, within its scopes; **a widget** opened with a key sees what its
  signed-in user sees, narrowed to the key's numbers.

A business number's onboarding page (what Meta says stands between it and calling) is for staff who
may view business numbers (`whatsapp.view_businessnumber`: supervisors); setting its calling
settings at Meta is for those who may change them (`whatsapp.change_businessnumber`: administrators).

`/metrics` (the floor's figures, no personal data) is read by a monitoring system with the
deployment's METRICS_TOKEN only: no session, no API key (`may_read_metrics`).

Free text a person typed or said (transcripts, summaries, wrap-up notes, messages) is personal data:
everyone reads it masked (`recordings.redaction`) unless they may read it raw
(`recordings.view_raw_transcript`, or a key with the `admin` scope), and nobody without that finds it
by searching for what the mask hides.
"""

import re
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from django.db.models import Q, QuerySet

if TYPE_CHECKING:
    from collections.abc import Iterable

    from django.contrib.auth.models import AbstractBaseUser

    from calls.models import Call
    from campaigns.models import Campaign
    from integrations.models import ApiKey
    from messaging.models import Contact, Conversation, ConversationNote, MarketingPreference, Message

RAW_TEXT_PERMISSION = "recordings.view_raw_transcript"
HEAR_ANY_CALL_PERMISSION = "recordings.listen_recording"
COLLEAGUES_NOTES_PERMISSION = "calls.read_colleagues_notes"
KPIS_PERMISSION = "calls.view_kpis"
NUMBER_VIEW_PERMISSION = "whatsapp.view_businessnumber"
NUMBER_CHANGE_PERMISSION = "whatsapp.change_businessnumber"
# A search for masked text could find a row by the card number, e-mail or id the reader cannot see:
# for them, free text is searched only with words that no mask could hide (no digit, no '@').
MASKABLE = re.compile(r"[0-9@]")


@dataclass(frozen=True)
class Viewer:
    """What one viewer may see: the numbers whose data they see, which of those numbers' calls,
    whose notes, and whether free text reaches them raw."""

    number_ids: frozenset[int] = field(default_factory=frozenset)
    scopes: frozenset[str] = field(default_factory=frozenset)
    sees_raw_text: bool = False
    sees_every_call: bool = True  # False: only the agent's own calls
    reads_colleagues_notes: bool = True  # False: only the notes of the agent's own calls
    sees_kpis: bool = True  # the floor's figures: every queue's, every agent's
    runs_campaigns: bool = False  # sees and runs its numbers' campaigns: supervisors and API keys
    agent_id: int | None = None
    user_id: int | None = None
    key: "ApiKey | None" = None
    # An agent's own calls stay theirs after they leave the number's queues, unless the viewer is
    # narrowed to some numbers (a widget's key).
    is_narrowed: bool = False

    def within(self, number_ids) -> "Viewer":
        """The same viewer seeing no more than `number_ids` (a widget's key narrows its user)."""
        return replace(self, number_ids=self.number_ids & frozenset(number_ids), is_narrowed=True)

    # Calls

    def calls(self) -> "QuerySet[Call]":
        from calls.models import Call

        if self.sees_every_call:
            return Call.objects.filter(business_number_id__in=self.number_ids)
        if self.agent_id is None:
            return Call.objects.none()
        own = Call.objects.filter(agent_id=self.agent_id)
        return own.filter(business_number_id__in=self.number_ids) if self.is_narrowed else own

    def may_see_call(self, call: "Call") -> bool:
        if self.sees_every_call:
            return call.business_number_id in self.number_ids
        is_own = self.agent_id is not None and call.agent_id == self.agent_id
        return is_own and (not self.is_narrowed or call.business_number_id in self.number_ids)

    def notes_of(self, call: "Call") -> str:
        """The call's wrap-up notes as this viewer reads them: "" when they are another agent's and
        the viewer may not read colleagues' notes, masked unless the viewer reads raw text."""
        is_own = self.agent_id is not None and call.agent_id == self.agent_id
        return self._notes(
            call.wrap_up_notes, is_own=is_own, business_number_id=call.business_number_id,
            country=call.contact.country,
        )  # fmt: skip

    def _notes(self, text: str, *, is_own: bool, business_number_id: int, country: str) -> str:
        """The one notes rule: one's own, or a colleague's on a number the viewer sees when they may
        read colleagues' notes; masked unless the viewer reads raw text."""
        if not text or not (is_own or business_number_id in self.number_ids):
            return ""
        if not (is_own or self.reads_colleagues_notes):
            return ""
        return self.text(text, country=country)

    # Contacts and messages

    def contacts(self) -> "QuerySet[Contact]":
        """The contacts of the viewer's numbers: those who called, wrote, were written to, gave
        permission to be called or chose whether to take the number's marketing messages."""
        from messaging.models import Contact

        ids = self.number_ids
        return Contact.objects.filter(
            Q(calls__business_number_id__in=ids)
            | Q(messages__business_number_id__in=ids)
            | Q(windows__business_number_id__in=ids)
            | Q(call_permissions__business_number_id__in=ids)
            | Q(marketing_preferences__business_number_id__in=ids)
        ).distinct()

    def messages(self) -> "QuerySet[Message]":
        from messaging.models import Message

        return Message.objects.filter(business_number_id__in=self.number_ids)

    # Campaigns

    def campaigns(self) -> "QuerySet[Campaign]":
        """The campaigns of the viewer's numbers, for supervisors and API keys (a key's scopes say
        whether it reads them, `read`, or runs them, `messages:write`); none for agents."""
        from campaigns.models import Campaign

        if not self.runs_campaigns:
            return Campaign.objects.none()
        return Campaign.objects.filter(business_number_id__in=self.number_ids)

    def marketing_preferences(self) -> "QuerySet[MarketingPreference]":
        """Customers' choices of marketing messages from the viewer's numbers (WhatsApp's words, not a
        person's: nothing to mask)."""
        from messaging.models import MarketingPreference

        return MarketingPreference.objects.filter(business_number_id__in=self.number_ids)

    def conversation_note_of(self, note: "ConversationNote", *, conversation: "Conversation") -> str:
        """A private note on a conversation as this viewer reads it, by the rule of calls' notes: ""
        when a colleague wrote it and the viewer may not read colleagues' notes."""
        is_own = self.user_id is not None and note.author_id == self.user_id
        return self._notes(
            note.text, is_own=is_own, business_number_id=conversation.business_number_id,
            country=conversation.contact.country,
        )  # fmt: skip

    def conversations(self) -> "QuerySet[Conversation]":
        """The inbox's conversations of the viewer's numbers: the spans of the threads they see."""
        from messaging.models import Conversation

        return Conversation.objects.filter(business_number_id__in=self.number_ids)

    def may_see_conversation(self, conversation: "Conversation") -> bool:
        """`conversations()` for one conversation already read (no query)."""
        return conversation.business_number_id in self.number_ids

    def conversation_threads(self) -> "QuerySet[Conversation]":
        """The conversations whose thread the viewer may read: those they see, and an agent's the
        chats of the calls they were rung for or took (they read the chat beside the call, whatever
        number they serve now; narrowed to a widget's numbers like the rest)."""
        from messaging.models import Conversation

        if self.agent_id is None:
            return self.conversations()
        of_their_calls = Q(calls__agent_id=self.agent_id) | Q(calls__offered_to_id=self.agent_id)
        if self.is_narrowed:
            of_their_calls &= Q(business_number_id__in=self.number_ids)
        return Conversation.objects.filter(
            Q(business_number_id__in=self.number_ids)
            | Q(pk__in=Conversation.objects.filter(of_their_calls).values("pk"))
        )

    # Free text

    def text(self, text: str, *, country: str = "") -> str:
        """A business number's onboarding page (what Meta says stands between it and calling) is for staff who
        may view business numbers (`whatsapp.view_businessnumber`: supervisors); setting its calling
        settings at Meta is for those who may change them (`whatsapp.change_businessnumber`: administrators).

        Free text a person typed or said, as this viewer reads it."""
        from recordings.redaction import redact

        if self.sees_raw_text or not text:
            return text
        return redact(text, region=country or None)

    def may_search_text(self, term: str) -> bool:
        """Whether free text may be searched for `term` on this viewer's behalf."""
        return self.sees_raw_text or not MASKABLE.search(term)


def may_read_metrics(*, authorization: str) -> bool:
    """`/metrics` (calls, queues, agents, backlogs: no personal data, but the floor's figures) is
    read by a monitoring system with the deployment's METRICS_TOKEN, never by a user's session;
    with no token set, by nobody."""
    from django.conf import settings
    from django.utils.crypto import constant_time_compare

    scheme, _, token = authorization.partition(" ")
    return (
        bool(settings.METRICS_TOKEN)
        and scheme == "Bearer"
        and constant_time_compare(token, settings.METRICS_TOKEN)
    )


def may_see_number_onboarding(user: "AbstractBaseUser") -> bool:
    """Whether a signed-in user may open a business number's onboarding page."""
    return bool(
        user.is_authenticated
        and user.is_active
        and user.is_staff
        and (user.has_perm(NUMBER_VIEW_PERMISSION) or user.has_perm(NUMBER_CHANGE_PERMISSION))
    )


def may_set_calling_settings(user: "AbstractBaseUser") -> bool:
    """Whether a signed-in user may set a business number's calling settings at Meta."""
    return bool(
        user.is_authenticated and user.is_active and user.is_staff and user.has_perm(NUMBER_CHANGE_PERMISSION)
    )


def viewer_of_user(user: "AbstractBaseUser") -> Viewer:
    """What a signed-in user of the dashboard or admin sees (nothing when signed out)."""
    from agents.selectors import agent_for_user, numbers_for_agent
    from integrations.models import ApiKey
    from whatsapp.models import BusinessNumber

    if not user.is_authenticated:
        return Viewer(sees_every_call=False, reads_colleagues_notes=False, sees_kpis=False)
    agent = None if user.is_staff else agent_for_user(user=user)
    if user.is_staff:  # a supervisor: the whole floor
        numbers = BusinessNumber.objects.all()
    elif agent is not None:
        numbers = numbers_for_agent(agent_id=agent.pk)
    else:
        numbers = BusinessNumber.objects.none()
    return Viewer(
        number_ids=frozenset(numbers.values_list("pk", flat=True)),
        scopes=frozenset({ApiKey.Scope.READ, ApiKey.Scope.CALLS_WRITE, ApiKey.Scope.MESSAGES_WRITE}),
        sees_raw_text=user.has_perm(RAW_TEXT_PERMISSION),
        sees_every_call=user.has_perm(HEAR_ANY_CALL_PERMISSION),
        reads_colleagues_notes=user.is_staff or user.has_perm(COLLEAGUES_NOTES_PERMISSION),
        sees_kpis=user.is_staff or user.has_perm(KPIS_PERMISSION),
        runs_campaigns=user.is_staff,
        agent_id=agent.pk if agent else None,
        user_id=user.pk,
    )


def viewers_of_agents(agent_ids: "Iterable[int]") -> dict[int, Viewer]:
    """`viewer_of_user` of each agent's user, by agent id, in a few queries however many agents
    (routing rings many at once): the agents, the numbers of their queues, and the permissions this
    module asks about, granted directly or through a group. A staff user (a supervisor taking calls)
    is read by `viewer_of_user` itself."""
    from collections import defaultdict

    from django.contrib.auth import get_user_model

    from agents.models import Agent, QueueMembership
    from integrations.models import ApiKey

    agents = list(Agent.objects.filter(pk__in=list(agent_ids)).select_related("user"))
    viewers = {agent.pk: viewer_of_user(agent.user) for agent in agents if agent.user.is_staff}
    plain = [agent for agent in agents if not agent.user.is_staff]
    if not plain:
        return viewers
    numbers: dict[int, set[int]] = defaultdict(set)
    for agent_id, number_id in QueueMembership.objects.filter(
        agent_id__in=[agent.pk for agent in plain], queue__business_numbers__isnull=False
    ).values_list("agent_id", "queue__business_numbers"):
        numbers[agent_id].add(number_id)
    asked = {RAW_TEXT_PERMISSION, HEAR_ANY_CALL_PERMISSION, COLLEAGUES_NOTES_PERMISSION, KPIS_PERMISSION}

    def asked_of(prefix: str) -> Q:
        wanted = Q()
        for permission in asked:
            app_label, codename = permission.split(".")
            wanted |= Q(**{f"{prefix}content_type__app_label": app_label, f"{prefix}codename": codename})
        return wanted

    user_model = get_user_model()
    user_ids = [agent.user_id for agent in plain]
    direct = user_model.user_permissions.through.objects.filter(
        asked_of("permission__"), user_id__in=user_ids
    )
    in_groups = user_model.groups.through.objects.filter(
        asked_of("group__permissions__"), user_id__in=user_ids
    )
    granted: dict[int, set[str]] = defaultdict(set)
    for user_id, app_label, codename in [
        *direct.values_list("user_id", "permission__content_type__app_label", "permission__codename"),
        *in_groups.values_list(
            "user_id", "group__permissions__content_type__app_label", "group__permissions__codename"
        ),
    ]:
        granted[user_id].add(f"{app_label}.{codename}")
    for agent in plain:
        user = agent.user
        if not user.is_active:
            holds: set[str] = set()
        else:
            holds = asked if user.is_superuser else granted[user.pk]
        viewers[agent.pk] = Viewer(
            number_ids=frozenset(numbers[agent.pk]),
            scopes=frozenset({ApiKey.Scope.READ, ApiKey.Scope.CALLS_WRITE, ApiKey.Scope.MESSAGES_WRITE}),
            sees_raw_text=RAW_TEXT_PERMISSION in holds,
            sees_every_call=HEAR_ANY_CALL_PERMISSION in holds,
            reads_colleagues_notes=COLLEAGUES_NOTES_PERMISSION in holds,
            sees_kpis=KPIS_PERMISSION in holds,
            agent_id=agent.pk,
            user_id=user.pk,
        )
    return viewers


def viewer_of_key(key: "ApiKey") -> Viewer:
    """What a CRM sees with an API key: its numbers, its scopes; raw text with the admin scope."""
    from integrations.models import ApiKey

    return Viewer(
        number_ids=frozenset(key.business_numbers.values_list("pk", flat=True)),
        scopes=frozenset(key.scopes),
        sees_raw_text=ApiKey.Scope.ADMIN in key.scopes,
        runs_campaigns=True,
        key=key,
    )


def viewer_of(request) -> Viewer:
    """The viewer behind a request (an API key's, else the signed-in user's), read once a request."""
    from integrations.models import ApiKey

    viewer = getattr(request, "_viewer", None)
    if viewer is None:
        auth = getattr(request, "auth", None)
        viewer = viewer_of_key(auth) if isinstance(auth, ApiKey) else viewer_of_user(request.user)
        request._viewer = viewer
    return viewer
