from django.urls import path

from customers import views

app_name = "customers"

urlpatterns = [
    path("lookup/", views.customer_lookup, name="customer_lookup"),
    path("<int:pk>/", views.customer_detail, name="customer_detail"),
]
