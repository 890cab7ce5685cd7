from django.urls import path

from chat import views

urlpatterns = [
    path("", views.home, name="home"),
    path("rooms/<str:room>/", views.room, name="room"),
    path("api/rooms/<str:room>/messages", views.room_messages, name="room-messages"),
]
