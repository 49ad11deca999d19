from django.urls import path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from integrations import api

app_name = "integrations"

urlpatterns = [
    path("api/v1/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/v1/docs/", SpectacularSwaggerSplitView.as_view(url_name="integrations:schema"), name="docs"),
    path("api/v1/contacts/", api.ContactListApi.as_view(), name="contacts"),
    path("api/v1/contacts/<int:pk>/", api.ContactDetailApi.as_view(), name="contact"),
    path("api/v1/calls/", api.CallListApi.as_view(), name="calls"),
    path("api/v1/calls/<int:pk>/", api.CallDetailApi.as_view(), name="call"),
    path("api/v1/calls/<int:pk>/transcript/", api.TranscriptApi.as_view(), name="transcript"),
    path("api/v1/calls/<int:pk>/recording/", api.RecordingLinkApi.as_view(), name="recording"),
    path("api/v1/recordings/<str:token>/", api.RecordingDownloadApi.as_view(), name="recording-download"),
    path("api/v1/compliance/can-call/", api.CanCallApi.as_view(), name="can-call"),
    path("api/v1/permission-requests/", api.PermissionRequestApi.as_view(), name="permission-requests"),
    path("api/v1/messages/", api.MessageListApi.as_view(), name="messages"),
    path("api/v1/charges/", api.ChargeListApi.as_view(), name="charges"),
    path("api/v1/agents/", api.AgentListApi.as_view(), name="agents"),
]
