from django.urls import path

from calls import views

app_name = "calls"

urlpatterns = [
    path("wallboard/", views.wallboard, name="wallboard"),
]
