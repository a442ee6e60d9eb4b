from django.urls import path

from . import views

app_name = "accounts"
urlpatterns = [
    path("sign-in/", views.sign_in, name="sign_in"),
    path("sign-out/", views.sign_out, name="sign_out"),
    path("welcome/<str:uidb64>/<str:token>/", views.enroll, name="enroll"),
    path("account/", views.account, name="account"),
    path("account/callback-secret/", views.callback_secret, name="callback_secret"),
    path("users/", views.user_list, name="users"),
    path("users/add/", views.user_add, name="user_add"),
    path("users/<int:pk>/edit/", views.user_edit, name="user_edit"),
    path("users/<int:pk>/lock/", views.user_lock, name="user_lock"),
    path("users/<int:pk>/unlock/", views.user_unlock, name="user_unlock"),
    path("users/<int:pk>/reset-password/", views.user_reset_password, name="user_reset_password"),
    path("users/<int:pk>/secret-key/", views.user_secret_key, name="user_secret_key"),
    path("users/<int:pk>/new-key/", views.user_new_key, name="user_new_key"),
    path("activity/", views.activity_list, name="activity"),
    path("activity/<int:pk>/", views.activity_detail, name="activity_detail"),
]
