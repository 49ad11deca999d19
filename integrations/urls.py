from django.urls import path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from integrations.api import billing, calls, campaigns, contacts, kpis, messages

app_name = "integrations"

urlpatterns = [
    path("api/v1/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/v1/docs/", SpectacularSwaggerSplitView.as_view(url_name="integrations:schema"), name="docs"),
    path("api/v1/contacts/", contacts.ContactListApi.as_view(), name="contacts"),
    path("api/v1/contacts/<int:pk>/", contacts.ContactDetailApi.as_view(), name="contact"),
    path("api/v1/calls/", calls.CallListApi.as_view(), name="calls"),
    path("api/v1/calls/<int:pk>/", calls.CallDetailApi.as_view(), name="call"),
    path("api/v1/calls/<int:pk>/transcript/", calls.TranscriptApi.as_view(), name="transcript"),
    path("api/v1/calls/<int:pk>/recording/", calls.RecordingLinkApi.as_view(), name="recording"),
    path("api/v1/recordings/<str:token>/", calls.RecordingDownloadApi.as_view(), name="recording-download"),
    path("api/v1/compliance/can-call/", calls.CanCallApi.as_view(), name="can-call"),
    path("api/v1/permission-requests/", calls.PermissionRequestApi.as_view(), name="permission-requests"),
    path("api/v1/messages/", messages.MessageListApi.as_view(), name="messages"),
    path("api/v1/campaigns/", campaigns.CampaignListApi.as_view(), name="campaigns"),
    path("api/v1/campaigns/<int:pk>/", campaigns.CampaignDetailApi.as_view(), name="campaign"),
    path("api/v1/opt-ins/", campaigns.OptInApi.as_view(), name="opt-ins"),
    re_path(
        r"^api/v1/campaigns/(?P<pk>[0-9]{1,18})/(?P<action>start|pause|resume|cancel)/$",
        campaigns.CampaignActionApi.as_view(),
        name="campaign-action",
    ),
    path("api/v1/charges/", billing.ChargeListApi.as_view(), name="charges"),
    path("api/v1/agents/", calls.AgentListApi.as_view(), name="agents"),
    path("api/v1/kpis/", kpis.KpiApi.as_view(), name="kpis"),
    path("api/v1/reports/spend/", billing.SpendReportApi.as_view(), name="spend-report"),
    path("api/v1/reports/calls/", billing.CallCostReportApi.as_view(), name="call-cost-report"),
]
