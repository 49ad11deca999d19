from django.urls import path

from messaging import views

app_name = "messaging"

urlpatterns = [
    path("reports/costs/", views.costs, name="costs"),
    path("messages/<int:pk>/media/", views.message_media, name="message-media"),
]
