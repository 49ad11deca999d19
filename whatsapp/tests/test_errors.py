"""What Meta's errors mean for the people who asked, with Meta's own words kept."""

from whatsapp.errors import GraphTransportError, error_from_response


def meta_error(code: int, message: str, details: str = "") -> dict:
    return {
        "error": {
            "message": message,
            "type": "OAuthException",
            "code": code,
            "error_data": {"details": details},
        }
    }


def test_a_known_code_says_what_it_means_and_keeps_metas_words():
    error = error_from_response(http_status=400, body=meta_error(131047, "Re-engagement message", "24 hours"))

    assert (error.meaning, str(error)) == (
        "The customer has not written in the last 24 hours, so only an approved message template can be sent "
        "to them now.",
        "[131047] Re-engagement message (24 hours)",
    )


def test_an_unknown_code_gets_an_honest_sentence_that_names_it():
    error = error_from_response(http_status=400, body=meta_error(139999, "Something new"))

    assert error.meaning == (
        "WhatsApp did not take it, for a reason we cannot explain (WhatsApp error 139999): try again later, "
        "and tell an administrator if it happens again."
    )


def test_whatsapp_out_of_reach_says_so():
    error = GraphTransportError("POST /1/messages failed after retries: timed out")

    assert (
        error.meaning
        == "WhatsApp could not be reached or did not answer in time: try again in a few minutes."
    )
