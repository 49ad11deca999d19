from django.urls import path

from whatsapp import views

app_name = "whatsapp"

urlpatterns = [
    path("webhooks/whatsapp/", views.webhook, name="webhook"),
    path("numbers/<int:pk>/onboarding/", views.number_onboarding, name="onboarding"),
]
