from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from cases import views_customer

admin.site.site_header = "abusedesk administration"
admin.site.site_title = "abusedesk"
admin.site.login_template = None

urlpatterns = [
    path("accounts/login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    path("api/", include("api.urls")),
    # The customer's page from a notice's signed link: no login, the token is the key.
    path("c/<str:token>/", views_customer.customer_case, name="customer_case"),
    path("customers/", include("customers.urls")),
    path("", include("cases.urls")),
]
