from django.urls import path

from campaigns import views

app_name = "campaigns"

urlpatterns = [
    path("campaigns/", views.campaign_list, name="list"),
    path("campaigns/new/", views.campaign_new, name="new"),
    path("campaigns/<int:pk>/", views.campaign_detail, name="detail"),
    path("campaigns/<int:pk>/progress/", views.campaign_progress_part, name="progress"),
    path("campaigns/<int:pk>/<str:action>/", views.campaign_action, name="action"),
]
