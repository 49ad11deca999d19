from django.urls import path

from messaging import api, views

app_name = "messaging"

urlpatterns = [
    path("reports/costs/", views.costs, name="costs"),
    path("api/v1/reports/spend/", api.SpendReportApi.as_view(), name="api-spend"),
    path("api/v1/reports/calls/", api.CallCostReportApi.as_view(), name="api-calls"),
]
