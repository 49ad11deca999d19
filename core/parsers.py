"""The API's request bodies: JSON, read with a cap."""

import codecs
import json

from django.conf import settings
from rest_framework.exceptions import APIException, ParseError
from rest_framework.parsers import JSONParser
from rest_framework.utils.json import strict_constant


class RequestTooLarge(APIException):
    status_code = 413
    default_code = "request_too_large"


class BoundedJSONParser(JSONParser):
    """JSON bodies up to DATA_UPLOAD_MAX_MEMORY_SIZE bytes, read with that cap (413 beyond it, before
    anything is parsed: DRF's own parser reads the stream whole, past Django's limit); a body nested
    too deeply for the parser is a 400, not a RecursionError."""

    def parse(self, stream, media_type=None, parser_context=None):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        request = (parser_context or {}).get("request")
        declared = request.META.get("CONTENT_LENGTH") if request is not None else None
        if limit is not None and declared and declared.isdigit() and int(declared) > limit:
            raise _too_large(limit)
        body = stream.read(limit + 1) if limit is not None else stream.read()
        if limit is not None and len(body) > limit:
            raise _too_large(limit)
        encoding = (parser_context or {}).get("encoding", settings.DEFAULT_CHARSET)
        try:
            return json.loads(codecs.decode(body, encoding), parse_constant=strict_constant)
        except ValueError as error:  # UnicodeDecodeError included
            raise ParseError(f"JSON parse error - {error}") from None
        except RecursionError:
            raise ParseError("JSON parse error - the body is nested too deeply.") from None


def _too_large(limit: int) -> RequestTooLarge:
    return RequestTooLarge(
        {
            "code": "request_too_large",
            "detail": f"The request body is larger than the limit of {limit} bytes.",
        }
    )
