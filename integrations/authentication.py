"""Who calls the API: a CRM with an API key (`Authorization: Bearer sbk_…`), or the dashboard's own
pages with the signed-in user's session. Both end up as a `Caller`: the numbers it may see, and
whether it may do what an endpoint does."""

from dataclasses import dataclass, field

from rest_framework import authentication, exceptions, permissions

from integrations.models import ApiKey
from integrations.services import api_key_authenticate


class KeyHolder:
    """request.user for a request made with an API key: authenticated, with no Django permissions
    (a key's rights are its scopes)."""

    is_authenticated = True
    is_anonymous = False
    is_staff = False
    pk = None

    def __init__(self, key: ApiKey) -> None:
        self.key = key

    def has_perm(self, perm: str, obj=None) -> bool:
        return False

    def __str__(self) -> str:
        return f"API key {self.key}"


class ApiKeyAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).decode("latin-1")
        if not header.startswith(f"{self.keyword} "):
            return None
        key = api_key_authenticate(token=header[len(self.keyword) + 1 :].strip())
        if key is None:
            raise exceptions.AuthenticationFailed("Unknown or revoked API key.")
        return KeyHolder(key), key

    def authenticate_header(self, request) -> str:
        return f'{self.keyword} realm="api"'


@dataclass(frozen=True)
class Caller:
    """What a request may see and do."""

    number_ids: frozenset[int] = field(default_factory=frozenset)
    scopes: frozenset[str] = field(default_factory=frozenset)
    sees_raw_text: bool = False
    key: ApiKey | None = None
    # A user signed in to the dashboard without the permission to listen to any call hears, and
    # reads the transcripts of, only the calls they took as an agent, as on the call page.
    hears_all_calls: bool = True
    agent_id: int | None = None


def caller_of(request) -> Caller:
    from agents.selectors import agent_for_user, numbers_for_agent
    from recordings.selectors import sees_raw_text
    from whatsapp.models import BusinessNumber

    if isinstance(request.auth, ApiKey):
        key = request.auth
        return Caller(
            number_ids=frozenset(key.business_numbers.values_list("pk", flat=True)),
            scopes=frozenset(key.scopes),
            sees_raw_text=ApiKey.Scope.ADMIN in key.scopes,
            key=key,
        )
    user = request.user
    agent = None
    if user.is_staff:  # a supervisor: the whole floor
        numbers = BusinessNumber.objects.all()
    else:
        agent = agent_for_user(user=user)
        numbers = numbers_for_agent(agent_id=agent.pk) if agent else BusinessNumber.objects.none()
    return Caller(
        number_ids=frozenset(numbers.values_list("pk", flat=True)),
        scopes=frozenset({ApiKey.Scope.READ, ApiKey.Scope.CALLS_WRITE, ApiKey.Scope.MESSAGES_WRITE}),
        sees_raw_text=sees_raw_text(user),
        hears_all_calls=user.has_perm("recordings.listen_recording"),
        agent_id=agent.pk if agent else None,
    )


class HasScope(permissions.BasePermission):
    """An API key with the view's `required_scope` (or `admin`); a signed-in user of the dashboard."""

    def has_permission(self, request, view) -> bool:
        if not (request.user and request.user.is_authenticated):
            return False
        if not isinstance(request.auth, ApiKey):
            return True
        scopes = set(request.auth.scopes)
        self.message = f"This API key lacks the {view.required_scope!r} scope."
        return view.required_scope in scopes or ApiKey.Scope.ADMIN in scopes
