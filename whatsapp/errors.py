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

    @property
    def meaning(self) -> str:
        """What the error means for the agent or supervisor who asked, as a sentence (MEANINGS);
        `str(error)` keeps Meta's code and words for the logs and the back office."""
        if isinstance(self, GraphTransportError):
            return UNREACHABLE
        known = MEANINGS.get(self.code) if self.code is not None else None
        return known or UNKNOWN.format(code=self.code if self.code is not None else "none")


# What Meta's error codes mean for the people using the product (WHATSAPP_API.md §7 and §10, and
# Meta's error reference), in one place: the dashboard, the supervisors' pages and the API say these.
MEANINGS: dict[int, str] = {
    # Messages (the permission request, the "Call us" button, texts and templates).
    131026: (
        "This number cannot receive WhatsApp messages: it may not be on WhatsApp, or the customer's "
        "WhatsApp app may be too old to show this message."
    ),
    131047: (
        "The customer has not written in the last 24 hours, so only an approved message template can "
        "be sent to them now."
    ),
    131049: (
        "WhatsApp did not deliver this marketing message, to limit how many marketing messages the "
        "customer gets: try again in a few days, or reach them another way."
    ),
    130472: (
        "WhatsApp did not deliver this marketing message: the customer's number is part of a WhatsApp "
        "experiment that holds some marketing messages back."
    ),
    131050: "The customer has stopped marketing messages from this business.",
    131056: "Too many messages went to this customer in a short time: wait a little before trying again.",
    130429: "This business number is sending more messages than WhatsApp allows: try again shortly.",
    131009: "The customer's WhatsApp app cannot show this kind of message.",
    131051: "WhatsApp does not support this type of message.",
    131021: "This is the business's own number: it cannot be sent a message.",
    131031: "The business's WhatsApp account is locked: tell an administrator.",
    131042: "WhatsApp refused it: the business account has a payment problem; tell an administrator.",
    131000: "WhatsApp had a problem on its side: try again in a few minutes.",
    131016: "WhatsApp is not available just now: try again in a few minutes.",
    132000: "The message template's parameters do not match the approved template: tell an administrator.",
    132001: "That message template does not exist on WhatsApp in this language: tell an administrator.",
    132015: "That message template is paused on WhatsApp: tell an administrator.",
    132016: "That message template is disabled on WhatsApp: tell an administrator.",
    133010: "The business number is not registered with WhatsApp: tell an administrator.",
    368: "WhatsApp has blocked this business number for a while for policy violations.",
    # The account and the request.
    100: "WhatsApp refused the request as invalid: tell an administrator.",
    190: "The business's access to WhatsApp has expired or is not valid: tell an administrator.",
    10: "The business's access to WhatsApp lacks a permission this needs: tell an administrator.",
    200: "The business's access to WhatsApp lacks a permission this needs: tell an administrator.",
    4: "Too many requests to WhatsApp just now: try again in a few minutes.",
    80007: "Too many requests to WhatsApp just now: try again in a few minutes.",
    613: "Too many call permission look-ups just now: try again in a moment.",
    # Calls.
    138000: "Calling (and asking permission to call) is not turned on for this business number.",
    138001: (
        "This customer cannot be called on WhatsApp: they may not be on WhatsApp, may not have accepted "
        "its terms, or their app cannot take business calls."
    ),
    138002: "This business number has as many calls at once as WhatsApp allows: try again when one ends.",
    138003: "A call with this customer is already going on.",
    138004: "WhatsApp could not connect the call: try again.",
    138005: "This business number has placed as many calls as WhatsApp allows for now: try again later.",
    138006: "The customer has not given permission to be called.",
    138007: "The call could not be set up in time: try again.",
    138009: "The customer was asked for permission to call as often as WhatsApp allows: ask again later.",
    138012: "The customer has had as many business calls as WhatsApp allows in 24 hours: try again later.",
    138013: "Too many call permission look-ups just now: try again in a moment.",
    138018: "Calling cannot be turned on for this business number yet: tell an administrator.",
}
UNKNOWN = (
    "WhatsApp did not take it, for a reason we cannot explain (WhatsApp error {code}): try again later, "
    "and tell an administrator if it happens again."
)
UNREACHABLE = "WhatsApp could not be reached or did not answer in time: try again in a few minutes."


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


class MarketingMessagesStopped(GraphAPIError):
    """131050: the customer stopped marketing messages from this business (WHATSAPP_API.md §10.2)."""

    code = 131050


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
        MarketingMessagesStopped,
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
