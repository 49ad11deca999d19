"""Who calls the API: a CRM with an API key (`Authorization: Bearer sbk_…`), or the dashboard's own
pages with the signed-in user's session. Both end up as a `core.access.Viewer`: the numbers it may
see, and whether it may do what an endpoint does."""

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
