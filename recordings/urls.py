from django.urls import path

from recordings import views

app_name = "recordings"

urlpatterns = [
    path("calls/<int:pk>/", views.call_page, name="call"),
    path("calls/<int:pk>/recording/", views.call_recording, name="audio"),
]
