from django.urls import path

from integrations import widget_views

app_name = "widget"

urlpatterns = [
    path("widget.js", widget_views.widget_script, name="script"),
    path("widget/frame/", widget_views.widget_frame, name="frame"),
    path("widget/session/", widget_views.widget_session, name="session"),
    path("widget/softphone/", widget_views.widget_softphone, name="softphone"),
    path("api/v1/widget/tokens/", widget_views.WidgetTokenApi.as_view(), name="tokens"),
]
