"""Meta's Graph API errors as typed exceptions carrying Meta's code (WHATSAPP_API.md §7)."""


class GraphAPIError(Exception):
    """An error answer from the Graph API: `{"error": {"message", "type", "code", ...}}`."""

    code: int | None = None

    def __init__(
        self,
        message: str,
        *,
        code: int | None = None,
        http_status: int | None = None,
        details: str = "",
        error_data: dict | None = None,
        fbtrace_id: str = "",
    ) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.http_status = http_status
        self.details = details
        self.error_data = error_data or {}
        self.fbtrace_id = fbtrace_id

    def __str__(self) -> str:
        detail = f" ({self.details})" if self.details else ""
        return f"[{self.code}] {self.message}{detail}"


class GraphTransportError(GraphAPIError):
    """Meta could not be reached, or kept failing (timeouts, 5xx) after the retries."""


class InvalidParameter(GraphAPIError):
    code = 100


class RateLimited(GraphAPIError):
    """613 (formerly 138013): too many call-permission look-ups."""

    code = 613


class InteractiveTypeNotSupported(GraphAPIError):
    code = 131009


class MessageUndeliverable(GraphAPIError):
    code = 131026


class ReEngagementRequired(GraphAPIError):
    """131047: outside the 24 h customer-service window only templates may be sent."""

    code = 131047


class TemplateNotFound(GraphAPIError):
    code = 132001


class InvalidAccessToken(GraphAPIError):
    code = 190


class CallingNotEnabled(GraphAPIError):
    code = 138000


class ReceiverUncallable(GraphAPIError):
    code = 138001


class ConcurrentCallLimit(GraphAPIError):
    code = 138002


class DuplicateCall(GraphAPIError):
    code = 138003


class CallConnectionError(GraphAPIError):
    code = 138004


class CallRateLimit(GraphAPIError):
    code = 138005


class NoCallPermission(GraphAPIError):
    code = 138006


class CallConnectionTimeout(GraphAPIError):
    code = 138007


class PermissionRequestLimit(GraphAPIError):
    code = 138009


class ConnectedCallLimit(GraphAPIError):
    """138012: the pair's business-initiated calls per 24 h are used up; see `error_data`."""

    code = 138012


class CallingPrerequisitesUnmet(GraphAPIError):
    code = 138018


ERRORS_BY_CODE: dict[int, type[GraphAPIError]] = {
    error_class.code: error_class
    for error_class in (
        InvalidParameter,
        RateLimited,
        InteractiveTypeNotSupported,
        MessageUndeliverable,
        ReEngagementRequired,
        TemplateNotFound,
        InvalidAccessToken,
        CallingNotEnabled,
        ReceiverUncallable,
        ConcurrentCallLimit,
        DuplicateCall,
        CallConnectionError,
        CallRateLimit,
        NoCallPermission,
        CallConnectionTimeout,
        PermissionRequestLimit,
        ConnectedCallLimit,
        CallingPrerequisitesUnmet,
    )
}
ERRORS_BY_CODE[138013] = RateLimited  # the permission look-up limit's former code


def error_from_response(*, http_status: int, body: object) -> GraphAPIError:
    """The typed exception for an error answer, from Meta's error shape where there is one."""
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return GraphAPIError(f"HTTP {http_status} without a Graph API error body", http_status=http_status)
    code = error.get("code") if isinstance(error.get("code"), int) else None
    error_data = error.get("error_data") if isinstance(error.get("error_data"), dict) else {}
    error_class = ERRORS_BY_CODE.get(code, GraphAPIError) if code is not None else GraphAPIError
    return error_class(
        str(error.get("message") or f"HTTP {http_status}"),
        code=code,
        http_status=http_status,
        details=str(error_data.get("details") or ""),
        error_data=error_data,
        fbtrace_id=str(error.get("fbtrace_id") or ""),
    )
