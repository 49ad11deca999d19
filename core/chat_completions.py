"""One answer from any OpenAI-compatible chat completions endpoint, for the product's model backends
(call summaries, the chat assistant): JSON asked for, temperature 0, and every failure an
EndpointFailure with a short reason a supervisor can read. The key goes only in the Authorization
header and is never logged."""

import httpx


class EndpointFailure(Exception):
    """The endpoint gave no usable answer; the message is a short reason."""


def chat_completion(
    *,
    url: str,
    key: str,
    model: str,
    messages: list[dict[str, str]],
    timeout_s: float,
    client: httpx.Client | None = None,
) -> str:
    """The content of the model's reply to `messages` at `url` (the API's base, e.g. ".../v1")."""
    headers = {"Content-Type": "application/json"}
    if key:  # a self-hosted endpoint may need none
        headers["Authorization"] = f"Bearer {key}"
    body = {
        "model": model,
        "messages": messages,
        "temperature": 0,
        "response_format": {"type": "json_object"},
    }
    try:
        response = (client or httpx).post(
            f"{url.rstrip('/')}/chat/completions", json=body, headers=headers, timeout=timeout_s
        )
    except httpx.TimeoutException as error:
        raise EndpointFailure("the endpoint timed out") from error
    except (httpx.HTTPError, httpx.InvalidURL) as error:
        raise EndpointFailure(f"could not reach the endpoint: {type(error).__name__}") from error
    if not response.is_success:
        raise EndpointFailure(f"HTTP {response.status_code} from the endpoint")
    try:
        content = response.json()["choices"][0]["message"]["content"]
    except (ValueError, LookupError, TypeError) as error:
        raise EndpointFailure("not a chat completion from the endpoint") from error
    if not isinstance(content, str):
        raise EndpointFailure("not a chat completion from the endpoint")
    return content
