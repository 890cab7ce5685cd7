from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from chat.forms import ThrottledAuthenticationForm
from ops import views as ops_views

urlpatterns = [
    path(
        "accounts/login/",
        auth_views.LoginView.as_view(authentication_form=ThrottledAuthenticationForm),
        name="login",
    ),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    # Django's own views and templates (the admin's): a changed password signs the user's
    # other sessions out and closes their sockets (chat/accounts.py).
    path(
        "accounts/password_change/",
        auth_views.PasswordChangeView.as_view(),
        name="password_change",
    ),
    path(
        "accounts/password_change/done/",
        auth_views.PasswordChangeDoneView.as_view(),
        name="password_change_done",
    ),
    path("admin/", admin.site.urls),
    path("healthz", ops_views.healthz, name="healthz"),
    path("readyz", ops_views.readyz, name="readyz"),
    path("metrics", ops_views.metrics, name="metrics"),
    path("ops/panel/", ops_views.panel, name="panel"),
    path("ops/panel.json", ops_views.panel_data, name="panel-data"),
    path("", include("chat.urls")),
]
